"""Share a model folder, a saved corpus or a Space folder on the Hugging Face Hub (``bikanet push``).

* :func:`push_model`: a ``save_pretrained`` folder (``config.json`` + weights, with its model card ``README.md``)
  to a model repository;
* :func:`push_corpus`: a ``DatasetDict`` saved with ``save_to_disk`` to a dataset repository, with a dataset card;
* :func:`push_space`: a folder built by ``space/build.py`` to a Gradio Space.

Each checks the folder and the token (``HfApi.whoami``) before it uploads anything, creates the repository (private
with ``private=True``) and, with ``revision``, the branch, and returns the URL of what it pushed. Problems are
raised as ``ValueError`` / ``FileNotFoundError`` with one sentence that says what to do: the ``bikanet`` command
prints that sentence.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# What a training run's output folder holds that is not the model (the same as `training.push_folder` leaves out).
MODEL_IGNORE_PATTERNS = ["checkpoint-*", "best/*", "*.tmp"]
SPACE_IGNORE_PATTERNS = ["__pycache__/*", "*/__pycache__/*", "*.pyc", ".git/*", "*.egg-info/*"]
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
NO_TOKEN_MESSAGE = (
    "No Hugging Face token: run `hf auth login`, set HF_TOKEN, or pass --token (a token with the write role, from "
    "https://huggingface.co/settings/tokens)."
)
_URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# The `source` column of a corpus: "<folder>/<file>" for folder images, "<hub id>[:split]:<index>" for Hub ones.
_HUB_SOURCE = re.compile(r"^(?P<hub>.+):\d+$")


# ---------------------------------------------------------------------------------------------------------------
# Token and error handling
# ---------------------------------------------------------------------------------------------------------------
def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


@contextlib.contextmanager
def _explain_hub_errors(repo_id: str, repo_type: str) -> Iterator[None]:
    """Turn the Hub client's HTTP and connection errors into a ``ValueError`` holding one readable sentence."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
    from huggingface_hub.utils import httpx

    try:
        yield
    except OfflineModeIsEnabled as err:
        raise ValueError("Hub offline mode is on (HF_HUB_OFFLINE=1); unset it to push.") from err
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        detail = err.server_message or str(err).strip().splitlines()[0]
        kind = "" if repo_type == "model" else f"{repo_type} "
        if status == 401:
            message = f"the Hub refused the token (401) while pushing to the {kind}repository {repo_id}: {detail}"
        elif status == 403:
            message = (
                f"the token may not write to the {kind}repository {repo_id} (403): it needs the write role, and "
                f"'{repo_id.split('/')[0]}' must be your user name or one of your organisations"
            )
        else:
            message = f"the Hub answered {status} while pushing to the {kind}repository {repo_id}: {detail}"
        raise ValueError(message) from err
    except httpx.TransportError as err:
        raise ValueError(f"could not reach the Hub at {_endpoint()}: {err}") from err


def check_token(token: str | None = None) -> str:
    """The user name of ``token`` (default: ``HF_TOKEN`` or the ``hf auth login`` token) according to the Hub.

    Raises ``ValueError`` when there is no token, when the Hub refuses it or cannot be reached.
    """
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import httpx

    if constants.is_offline_mode():
        raise ValueError("Hub offline mode is on (HF_HUB_OFFLINE=1); unset it to push.")
    token = token or get_token()
    if not token:
        raise ValueError(NO_TOKEN_MESSAGE)
    try:
        return HfApi(token=token).whoami()["name"]
    except HfHubHTTPError as err:
        if err.response is not None and err.response.status_code == 401:
            raise ValueError(
                "the token was refused by the Hub (401 Unauthorized): check HF_TOKEN or --token, or run "
                "`hf auth login` again with a valid token."
            ) from err
        raise ValueError(f"could not check the token with the Hub at {_endpoint()}: {err}") from err
    except httpx.TransportError as err:
        raise ValueError(f"could not reach the Hub at {_endpoint()}: {err}") from err


def _repo_url(repo_id: str, repo_type: str, revision: str | None) -> str:
    url = f"{_endpoint()}/{_URL_PREFIXES[repo_type]}{repo_id}"
    return f"{url}/tree/{revision}" if revision else url


def _existing_folder(folder: str | os.PathLike) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise FileNotFoundError(f"{folder} {what}.")
    return folder


def _create_repo(api, repo_id: str, repo_type: str, private: bool, revision: str | None, **kwargs: Any) -> None:
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **kwargs)
    if revision:
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)


def _upload_folder(
    folder: Path,
    repo_id: str,
    repo_type: str,
    *,
    private: bool,
    revision: str | None,
    token: str | None,
    ignore_patterns: list[str],
    **create_kwargs: Any,
) -> str:
    """Check the token, create the repository (and branch), upload ``folder`` and return the repository URL."""
    from huggingface_hub import HfApi

    check_token(token)
    api = HfApi(token=token)
    with _explain_hub_errors(repo_id, repo_type):
        _create_repo(api, repo_id, repo_type, private, revision, **create_kwargs)
        api.upload_folder(
            repo_id=repo_id,
            repo_type=repo_type,
            folder_path=str(folder),
            revision=revision,
            ignore_patterns=ignore_patterns,
            commit_message=f"Upload {folder.resolve().name}",
        )
    url = _repo_url(repo_id, repo_type, revision)
    logger.info("Pushed %s to %s", folder, url)
    return url


# ---------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------
def check_model_folder(folder: str | os.PathLike) -> Path:
    """``folder`` if it holds a ``save_pretrained`` model (``config.json`` and weights), else ``ValueError`` naming
    what is missing. A folder without a model card (``README.md``) only gets a warning."""
    folder = _existing_folder(folder)
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        missing.append(f"model weights ({' or '.join(WEIGHT_FILES[::2])})")
    if missing:
        raise ValueError(
            f"{folder} is not a saved model: it lacks {' and '.join(missing)}. Save one with "
            "model.save_pretrained(folder)."
        )
    if not (folder / "README.md").is_file():
        warnings.warn(
            f"{folder} has no README.md: the model page will have no model card (write one with "
            "bikanet_hf.hub.write_model_card).",
            stacklevel=3,
        )
    return folder


def push_model(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
) -> str:
    """Upload a ``save_pretrained`` folder to the model repository ``repo_id``; returns its URL.

    The folder must hold ``config.json`` and the weights; training leftovers (``checkpoint-*``, ``best/``) are
    not uploaded. With ``revision`` the files go to that branch, created from ``main`` if it does not exist.
    """
    folder = check_model_folder(folder)
    return _upload_folder(
        folder,
        repo_id,
        "model",
        private=private,
        revision=revision,
        token=token,
        ignore_patterns=MODEL_IGNORE_PATTERNS,
    )


# ---------------------------------------------------------------------------------------------------------------
# Corpora
# ---------------------------------------------------------------------------------------------------------------
def _corpus_sources(dataset_dict) -> list[str | Path]:
    """The sources of a corpus, read back from its ``source`` column (for the licence section of its card)."""
    split = dataset_dict["train"] if "train" in dataset_dict else next(iter(dataset_dict.values()))
    sources: dict[str, str | Path] = {}
    for value in dict.fromkeys(split["source"][:]):
        match = _HUB_SOURCE.match(value)
        if match:
            sources.setdefault(match["hub"], match["hub"])
        else:
            folder = value.split("/")[0]
            # A Path, not a str: a bare folder name would read as a Hub dataset id.
            sources.setdefault(folder, Path(folder))
    return list(sources.values())


def _corpus_settings(dataset_dict) -> dict[str, Any]:
    """The ``build_corpus`` settings that can be read from the data: crop size and crops per image."""
    if "train" not in dataset_dict or len(dataset_dict["train"]) == 0:
        return {}
    train = dataset_dict["train"]
    width, height = train[0]["sharp"].size
    images = len(set(train["source"][:]))
    settings: dict[str, Any] = {"crop_size": width} if width == height else {}
    settings["crops_per_image"] = max(1, round(len(train) / max(images, 1)))
    return settings


def _load_saved_corpus(dataset_dir: Path):
    import datasets

    if not any((dataset_dir / name).is_file() for name in ("dataset_dict.json", "state.json")):
        raise ValueError(
            f"{dataset_dir} does not hold a dataset saved with save_to_disk (no dataset_dict.json or state.json)."
        )
    loaded = datasets.load_from_disk(str(dataset_dir))
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    if "source" not in next(iter(loaded.values())).column_names:
        raise ValueError(f"{dataset_dir} is not a BIKAnet corpus: it has no 'source' column (see bikanet_hf.corpus).")
    return loaded


def push_corpus(
    dataset_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
) -> str:
    """Push a corpus saved with ``save_to_disk`` (``build_corpus_dict``, ``train/build_corpus.py``) to the dataset
    repository ``repo_id`` with a dataset card; returns its URL.

    The card is the folder's ``README.md`` when it has one (``train/build_corpus.py`` writes it with the exact build
    settings), else :func:`bikanet_hf.corpus.dataset_card` from what the data shows: the sources (``source``
    column), the crop size and crops per image; the other settings are described with ``build_corpus``'s defaults.
    The YAML that ``push_to_hub`` writes (``configs``, ``dataset_info``) is kept in either card.
    """
    from huggingface_hub import DatasetCard, HfApi

    from .corpus import push_corpus_to_hub

    dataset_dir = _existing_folder(dataset_dir)
    dataset_dict = _load_saved_corpus(dataset_dir)
    check_token(token)
    local_card = dataset_dir / "README.md"
    with _explain_hub_errors(repo_id, "dataset"):
        if not local_card.is_file():
            push_corpus_to_hub(
                dataset_dict,
                repo_id,
                private=private,
                token=token,
                revision=revision,
                sources=_corpus_sources(dataset_dict),
                build_kwargs=_corpus_settings(dataset_dict),
            )
        else:
            dataset_dict.push_to_hub(repo_id, private=private, token=token, revision=revision)
            api = HfApi(token=token)
            written = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision)
            card = DatasetCard(local_card.read_text(encoding="utf-8"))
            for key, value in DatasetCard.load(written).data.to_dict().items():
                if key in ("configs", "dataset_info"):  # what load_dataset needs: the splits and features
                    card.data[key] = value
            api.upload_file(
                path_or_fileobj=str(card).encode("utf-8"),
                path_in_repo="README.md",
                repo_id=repo_id,
                repo_type="dataset",
                revision=revision,
                commit_message="Add dataset card",
            )
    url = _repo_url(repo_id, "dataset", revision)
    logger.info("Pushed %s to %s", dataset_dir, url)
    return url


# ---------------------------------------------------------------------------------------------------------------
# Spaces
# ---------------------------------------------------------------------------------------------------------------
def space_metadata(folder: str | os.PathLike) -> dict[str, Any]:
    """The YAML header of a Space folder's ``README.md``; ``ValueError`` if there is none or it has no ``sdk``."""
    import yaml

    folder = _existing_folder(folder)
    readme = folder / "README.md"
    if not readme.is_file():
        raise ValueError(
            f"{folder} has no README.md: a Space needs one whose YAML header names its sdk (build the folder with "
            "`python space/build.py OUTDIR`)."
        )
    text = readme.read_text(encoding="utf-8")
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, flags=re.DOTALL)
    try:
        metadata = yaml.safe_load(match[1]) if match else None
    except yaml.YAMLError as err:
        raise ValueError(f"The YAML header of {readme} does not parse: {err}") from err
    if not isinstance(metadata, dict) or not metadata.get("sdk"):
        raise ValueError(
            f"{readme} has no Space YAML header with an 'sdk:' line (a '---' block at the top, e.g. 'sdk: gradio')."
        )
    app_file = metadata.get("app_file")
    if app_file and not (folder / app_file).is_file():
        raise ValueError(f"{readme} names app_file: {app_file}, which is not in {folder}.")
    return metadata


def push_space(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
) -> str:
    """Upload a Space folder (``python space/build.py OUTDIR``) to the Space ``repo_id``; returns its URL.

    The folder's ``README.md`` must start with the Space YAML header (``sdk: gradio`` …); the Space is created
    with that SDK. Python caches are not uploaded.
    """
    metadata = space_metadata(folder)
    return _upload_folder(
        Path(folder),
        repo_id,
        "space",
        private=private,
        revision=revision,
        token=token,
        ignore_patterns=SPACE_IGNORE_PATTERNS,
        space_sdk=str(metadata["sdk"]),
    )


PUSHERS = {"model": push_model, "corpus": push_corpus, "space": push_space}
