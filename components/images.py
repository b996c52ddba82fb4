"""The images the pipeline steps run in: one version for all, the release of the package."""

# Keep equal to content_arena.__version__ (a test checks): the images are tagged with the release.
VERSION = "0.1.0"
REGISTRY = "ghcr.io/content-arena"
COMPONENTS_IMAGE = f"{REGISTRY}/content-arena-components:{VERSION}"
TRAINER_IMAGE = f"{REGISTRY}/content-arena-trainer:{VERSION}"
