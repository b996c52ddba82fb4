"""What every test suite shares, registered once as pytest plugins by tests/conftest.py.

* :mod:`support.configs`: the tiny configs (``TINY``, ``SMALL``) and the config fixtures.
* :mod:`support.api`: API tokens, the fake defender, ``wait_for`` and the TestClient opener.
* :mod:`support.backends`: Redis and PostgreSQL for tests, failing with how to start them when they are
  unreachable (``ARENA_SKIP_REDIS=1`` / ``ARENA_SKIP_POSTGRES=1`` skip instead).
* :mod:`support.champion`: ONE tiny champion trained per session for every suite that needs a real model.

Import from here as ``from support.api import ADMIN`` (tests/ is on sys.path through the root conftest).
"""
