"""``python -m train.gan``: train a GAN baseline (see train/gan/train.py for the flags)."""

import logging
import sys

from ..imagefolder import DatasetError
from ..outputs import OutputDirError
from .checkpoint import CheckpointError
from .train import main, parse_args

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main(parse_args())
    except (DatasetError, CheckpointError, OutputDirError) as e:
        sys.exit(f"error: {e}")
