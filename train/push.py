"""Upload a trained output folder (full pipeline or LoRA) to the Hugging Face Hub.

``train.train_dreambooth --push_to_hub`` calls :func:`push_folder` after the local output is
complete; when that push fails, this module's CLI retries it without retraining::

    hf auth login            # or: export HF_TOKEN=hf_...
    python -m train.push OUTPUT_DIR --hub_model_id user/albumcover-sd

The token is never taken on the command line (it would land in shell history and process lists):
it comes from ``HF_TOKEN`` or the ``hf auth login`` token store, as huggingface_hub reads them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

# Training by-products that stay local: optimizer state is many GB and useless on the Hub.
IGNORE_PATTERNS = ["checkpoint-*", "checkpoint-*/**", ".tmp-*", ".tmp-*/**", "logs/**"]


class PushError(RuntimeError):
    """The upload failed; the local folder is untouched and the message says how to retry."""


def retry_hint(folder: Path, repo_id: str) -> str:
    """The commands that retry a failed push of ``folder`` to ``repo_id``."""
    return (
        "log in with `hf auth login` (or set HF_TOKEN to a token with write access), then run "
        f"`python -m train.push {folder} --hub_model_id {repo_id}` "
        f"(or `hf upload {repo_id} {folder} . --exclude 'checkpoint-*'`)"
    )


def _scrub(text: str) -> str:
    # Defensive: no error message we pass on may echo the token back.
    token = os.environ.get("HF_TOKEN")
    return text.replace(token, "***") if token else text


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool | None = None,
    endpoint: str | None = None,
    commit_message: str = "Upload albumcover fine-tune",
) -> str:
    """Create ``repo_id`` (model repo, ok if it exists) and upload ``folder`` to it.

    Checkpoints, temp folders and tracker logs are left out. Returns the repo URL.

    Raises:
        PushError: no token, no network, no permission, ...; the message names the repo, the
            cause, and the command that retries.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not folder.is_dir():
        raise PushError(f"nothing to push: {folder} is not a folder")
    api = HfApi(endpoint=endpoint)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            commit_message=commit_message,
            ignore_patterns=IGNORE_PATTERNS,
        )
    # The HTTP stack raises its own error types (connection, auth, HTTP status, local token
    # lookup) and they differ between huggingface_hub backends; every one means "not pushed".
    except Exception as e:
        cause = _scrub(f"{type(e).__name__}: {e}")
        raise PushError(
            f"push of {folder} to the Hub repo {repo_id!r} failed ({cause}). "
            f"The local output in {folder} is complete. To retry: {retry_hint(folder, repo_id)}"
        ) from None  # not `from e`: the chained traceback could carry request headers
    return str(url)


def parse_args(input_args: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m train.push", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("folder", type=Path, help="the training --output_dir")
    parser.add_argument("--hub_model_id", required=True, help="user/name of the model repo")
    parser.add_argument("--hub_private_repo", action="store_true", help="create it private")
    return parser.parse_args(input_args)


def main(args: argparse.Namespace) -> str:
    url = push_folder(args.folder, args.hub_model_id, private=args.hub_private_repo or None)
    logger.info("pushed %s to %s", args.folder, url)
    return url


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        main(parse_args())
    except PushError as e:
        logger.error("%s", e)
        sys.exit(1)
