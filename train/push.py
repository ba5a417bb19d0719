"""The one way the project uploads to the Hugging Face Hub: trained models and built datasets.

``train.train_dreambooth --push_to_hub`` and ``train.build_dataset --push_to_hub`` call
:func:`push_folder` after their local output is complete; when that push fails, the output stays
as it is and this module's CLI retries it without rebuilding or retraining::

    hf auth login            # or: export HF_TOKEN=hf_...
    python -m train.push OUTPUT_DIR --hub_model_id user/albumcover-sd
    python -m train.push data/covers --hub_model_id user/covers --repo_type dataset

Flags are diffusers' (``--push_to_hub``, ``--hub_model_id``, ``--hub_private_repo``). The token
is never taken on the command line (it would land in shell history and process lists): it comes
from ``HF_TOKEN`` or the ``hf auth login`` token store, as huggingface_hub reads them, and no
message this module writes holds it (:func:`redact`).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_TYPES = ("model", "dataset")
# By-products that stay local: optimizer state is many GB and useless on the Hub, temp folders are
# half-written saves, tracker logs are the trainer's, the dataset builder's cache is its own.
IGNORE_PATTERNS = [
    "checkpoint-*",
    "checkpoint-*/**",
    ".tmp-*",
    ".tmp-*/**",
    "logs/**",
    ".cache/**",
]
REPO_ID = re.compile(r"([\w.-]+/)?[\w.-]+")
# What a Hugging Face access token looks like, wherever it turns up (error bodies, URLs).
TOKEN_SHAPE = re.compile(r"hf_[A-Za-z0-9]{6,}")


class PushError(RuntimeError):
    """The upload failed; the local folder is untouched and the message says how to retry."""


def redact(text: str) -> str:
    """``text`` with the token huggingface_hub would use (``HF_TOKEN`` or the login store), and
    anything shaped like a token, replaced by ``***``."""
    from huggingface_hub import get_token

    try:
        token = get_token()
    except Exception:  # an OIDC exchange that failed: no token to hide but the shaped ones
        token = None
    if token:
        text = text.replace(token, "***")
    return TOKEN_SHAPE.sub("hf_***", text)


def retry_hint(folder: Path, repo_id: str, repo_type: str = "model") -> str:
    """The commands that retry a failed push of ``folder`` to ``repo_id``."""
    typed = "" if repo_type == "model" else f" --repo_type {repo_type}"
    hf_typed = "" if repo_type == "model" else f" --repo-type {repo_type}"
    return (
        "log in with `hf auth login` (or set HF_TOKEN to a token with write access), then run "
        f"`python -m train.push {folder} --hub_model_id {repo_id}{typed}` "
        f"(or `hf upload {repo_id} {folder} .{hf_typed} --exclude 'checkpoint-*' "
        "--exclude '.cache/*'`)"
    )


def add_hub_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add diffusers' Hub flags to a training or dataset command; check them with
    :func:`check_hub_args`."""
    parser.add_argument(
        "--push_to_hub",
        nargs="?",
        const=True,
        default=False,
        help="upload the output when it is complete (token: HF_TOKEN or `hf auth login`)",
    )
    parser.add_argument("--hub_model_id", help="user/name (default: the output folder's name)")
    parser.add_argument("--hub_private_repo", action="store_true", help="create the repo private")
    parser.add_argument("--hub_token", help=argparse.SUPPRESS)  # refused: see check_hub_args


def check_hub_args(args: argparse.Namespace, default_repo: str) -> None:
    """Validate the flags of :func:`add_hub_arguments`; fill ``hub_model_id`` with
    ``default_repo`` when pushing without one.

    Raises:
        ValueError: a token on the command line, a value after --push_to_hub, a malformed repo
            id, or repo flags without --push_to_hub; the message names the flag.
    """
    if args.hub_token is not None:
        raise ValueError(
            "--hub_token is refused: a token on the command line leaks into shell history and "
            "process lists. Run `hf auth login` or set HF_TOKEN instead."
        )
    if args.push_to_hub is not True and args.push_to_hub is not False:
        raise ValueError(
            f"--push_to_hub takes no value (got {args.push_to_hub!r}): write "
            f"--push_to_hub --hub_model_id {args.push_to_hub}"
        )
    if not args.push_to_hub:
        for flag in ("hub_model_id", "hub_private_repo"):
            if getattr(args, flag):
                raise ValueError(f"--{flag} only applies with --push_to_hub")
        return
    if args.hub_model_id is None:
        args.hub_model_id = default_repo
    if not REPO_ID.fullmatch(args.hub_model_id):
        raise ValueError(
            f"--hub_model_id wants a repo id like user/name, got {args.hub_model_id!r}"
        )


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    repo_type: str = "model",
    private: bool | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Create ``repo_id`` (a model or dataset repo; fine if it exists) and upload ``folder``.

    Checkpoints, temp folders, tracker logs and the dataset cache are left out
    (:data:`IGNORE_PATTERNS`). The folder is only read. Returns the repo URL.

    Raises:
        PushError: no token, no network, no permission, ...; the message names the repo, the
            cause (token redacted), and the command that retries.
    """
    from huggingface_hub import HfApi, get_token

    folder = Path(folder)
    if repo_type not in REPO_TYPES:
        raise ValueError(f"repo_type must be one of {REPO_TYPES}, got {repo_type!r}")
    if not folder.is_dir():
        raise PushError(f"nothing to push: {folder} is not a folder")

    def failed(cause: str) -> PushError:
        cause = " ".join(redact(cause).split())  # one line: HTTP errors span several
        return PushError(
            f"push of {folder} to the Hub {repo_type} repo {repo_id!r} failed ({cause}). "
            f"The local output in {folder} is complete. "
            f"To retry: {retry_hint(folder, repo_id, repo_type)}"
        )

    if get_token() is None:
        raise failed("no Hugging Face token: HF_TOKEN is unset and no `hf auth login`")
    api = HfApi(endpoint=endpoint)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type)
        api.upload_folder(
            repo_id=repo_id,
            repo_type=repo_type,
            folder_path=folder,
            commit_message=commit_message or f"Upload albumcover {repo_type}",
            ignore_patterns=IGNORE_PATTERNS,
        )
    # The HTTP stack raises its own error types (connection, auth, HTTP status, local token
    # lookup) and they differ between huggingface_hub backends; every one means "not pushed".
    except Exception as e:
        # not `from e`: the chained traceback could carry request headers
        raise failed(f"{type(e).__name__}: {e}") from None
    return str(url)


def parse_args(input_args: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m train.push", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("folder", type=Path, help="the training --output_dir or dataset folder")
    parser.add_argument("--hub_model_id", required=True, help="user/name of the repo")
    parser.add_argument("--hub_private_repo", action="store_true", help="create it private")
    parser.add_argument("--repo_type", choices=REPO_TYPES, default="model")
    args = parser.parse_args(input_args)
    if not REPO_ID.fullmatch(args.hub_model_id):
        parser.error(f"--hub_model_id wants a repo id like user/name, got {args.hub_model_id!r}")
    return args


def main(args: argparse.Namespace) -> str:
    url = push_folder(
        args.folder,
        args.hub_model_id,
        repo_type=args.repo_type,
        private=args.hub_private_repo or None,
    )
    logger.info("pushed %s to %s", args.folder, url)
    return url


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    for name in ("httpx", "httpx2"):  # huggingface_hub's HTTP clients: a line per request
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        main(parse_args())
    except PushError as e:
        logger.error("%s", e)
        sys.exit(1)
