"""The ``s3`` backend: ``client`` holds boto3, botocore's failures as our errors and the
upload ``Part``; ``storage`` is the fileStorage interface on one bucket. The names the rest
of the code uses are re-exported here."""

from common.backends.s3.client import MiB, Part, map_error
from common.backends.s3.storage import DEFAULT_PREFIX, MAX_PARTS, S3_ICON, S3Storage

__all__ = ["DEFAULT_PREFIX", "MAX_PARTS", "S3_ICON", "MiB", "Part", "S3Storage", "map_error"]
