"""A user's own data: a folder of images, a folder of masks paired by file name, class names."""

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
from sklearn.utils import Bunch
from tqdm.auto import tqdm

from ..utils._pixels import to_rgb_uint8
from ..utils._validation import check_mask_size
from ._arrays import count_array_planes, is_array_file, read_array_planes
from ._io import _check_npy_header, image_extensions, read_image_pixels, read_mask

MASK_EXTENSIONS_EXTRA = {".npy"}


class FolderPairs(NamedTuple):
    """Result of :func:`pair_images_and_masks`."""

    pairs: list
    """``(image_path, mask_path)`` of every image that has a mask, sorted by name."""
    unpaired_images: list
    """Images without a mask of the same stem."""
    unpaired_masks: list
    """Masks without an image of the same stem."""


def list_images(image_dir, argument="IMAGE_DIR", only=None, arrays=False):
    """The image files of a folder (any format Pillow reads), sorted by name.

    Hidden files and files of other types (``.txt``, ``.json``, ...) are skipped; sub-folders are
    not searched (except, with ``arrays``, ``.zarr`` stores, which are images).

    Parameters
    ----------
    image_dir : str or path-like
    argument : str, default="IMAGE_DIR"
        How the folder is called in error messages.
    only : iterable of str, default=None
        Keep only these files (file names, or names without extension), e.g. one split of a folder
        that holds several (see :func:`read_image_list`); a name that is not in the folder is an
        error.
    arrays : bool, default=False
        Also list zarr / OME-Zarr stores (``NAME.zarr`` folders), for the readers of
        :func:`list_image_pages`; a file's name without extension drops ``.ome`` too
        (``cells.ome.tif`` is ``cells``).

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        If the folder does not exist or is a file.
    ValueError
        If it holds no image, or two images share a file stem (``a.jpg`` and ``a.png``).

    Examples
    --------
    >>> from sklearn_ddpm.datasets import list_images
    >>> list_images("photos/")  # doctest: +SKIP
    [PosixPath('photos/horse001.jpg'), PosixPath('photos/horse002.jpg')]
    """
    files = _list_files(image_dir, image_extensions(), "image", argument, arrays=arrays)
    if only is None:
        return files
    stem = image_stem if arrays else (lambda p: p.stem)
    # Only a known image extension is cut off: "horse.002" is a stem, not "horse" + ".002".
    extensions = image_extensions() | ({".zarr"} if arrays else set())
    wanted = {stem(Path(n)) if Path(n).suffix.lower() in extensions else n for n in map(str, only)}
    missing = wanted - {stem(p) for p in files}
    if missing:
        raise ValueError(f"{len(missing)} listed image(s) are not in {image_dir}: {_preview(sorted(missing))}.")
    return [p for p in files if stem(p) in wanted]


def image_stem(path):
    """A file's name without its extension, and without ``.ome`` (``cells.ome.tif`` -> ``cells``).

    For an :class:`ImagePage`, its own name (``stack_0003`` for page 3 of ``stack.tif``).
    """
    if isinstance(path, ImagePage):
        return path.stem
    path = Path(path)
    stem = path.stem
    if path.suffix.lower() in (".tif", ".tiff", ".zarr") and stem.lower().endswith(".ome"):
        stem = stem[:-4]
    return stem


@dataclass(frozen=True)
class ImagePage:
    """One image of a folder: a whole file, or plane ``index`` of the ``count`` planes of a stack.

    A TIFF stack or zarr array of several planes (``Z``, ``T``, ... axes) is several images, named
    ``STEM_0000``, ``STEM_0001``, ... (at least four digits); every other file is one image, named
    by its stem. Output files take these names (``predict`` writes ``STEM_0003.png`` for page 3).
    """

    path: Path
    """The file (or zarr folder)."""
    index: Optional[int] = None
    """The plane, or None for a file that is one image."""
    count: int = 1
    """Planes of the file."""

    @property
    def stem(self):
        """The image's name without extension: the file's stem, then ``_k`` for a plane."""
        base = image_stem(self.path)
        if self.index is None:
            return base
        return f"{base}_{self.index:0{max(4, len(str(self.count - 1)))}d}"

    @property
    def name(self):
        """The file's name, with ``[k]`` for a plane (for messages and lists of files)."""
        return self.path.name if self.index is None else f"{self.path.name}[{self.index}]"

    def __str__(self):
        return str(self.path) if self.index is None else f"{self.path}[{self.index}]"


def list_image_pages(image_dir, argument="IMAGE_DIR", only=None):
    """Every image of a folder, stacks expanded: the images ``fit``, ``predict`` and ``evaluate`` read.

    Files are those of :func:`list_images` with ``arrays=True`` (Pillow formats, TIFF, zarr /
    OME-Zarr stores); a file of several planes gives one :class:`ImagePage` per plane. A file
    whose planes cannot be counted is listed as one image, and its reading reports the error.

    Parameters
    ----------
    image_dir : str or path-like
    argument : str, default="IMAGE_DIR"
    only : iterable of str, default=None
        Keep only these files (see :func:`list_images`); a stack is kept or left whole.

    Returns
    -------
    list of ImagePage
    """
    return [page for path in list_images(image_dir, argument, only, arrays=True) for page in file_pages(path)]


def file_pages(path):
    """The :class:`ImagePage` s of one file: one, or one per plane of a stack."""
    path = Path(path)
    if not _reads_as_array(path):
        return [ImagePage(path)]
    try:
        count = count_array_planes(path)
    except (ValueError, OSError):
        return [ImagePage(path)]  # reading it reports the error, naming the file
    return [ImagePage(path)] if count == 1 else [ImagePage(path, k, count) for k in range(count)]


def _reads_as_array(path):
    """Whether ``path`` is read by tifffile or zarr (TIFF falls back to Pillow without tifffile)."""
    import importlib.util

    if not is_array_file(path):
        return False
    module = "zarr" if str(path).lower().rstrip("/").endswith(".zarr") else "tifffile"
    return importlib.util.find_spec(module) is not None


class PageReader:
    """Reads :class:`ImagePage` s; the planes of the last stack read are kept for its next page.

    Parameters
    ----------
    channels : None, "mean" or tuple of int, default=None
    intensity : {"8bit", "percentile"}, default="8bit"
        The mapping of :class:`~sklearn_ddpm.DDPMFeatureTransformer` (same names, same meaning):
        each image is checked against it when read, so an error names the file.
    """

    def __init__(self, channels=None, intensity="8bit"):
        self.channels, self.intensity = channels, intensity
        self._file, self._planes = None, None

    def pixels(self, page):
        """The pixels of ``page`` as stored (dtype and channels of the file)."""
        page = page if isinstance(page, ImagePage) else ImagePage(Path(page))
        if not _reads_as_array(page.path):
            return read_image_pixels(page.path, self.channels)
        if self._file != page.path:
            self._file, self._planes = None, None  # the old stack is not held while the new one is read
            self._planes, self._file = read_array_planes(page.path), page.path
        index = 0 if page.index is None else page.index
        if page.index is None and len(self._planes) != 1 or index >= len(self._planes):
            raise ValueError(f"{page}: the file holds {len(self._planes)} planes, not the {page.count} it was "
                             "listed with.")
        plane = self._planes[index]
        if self.channels is None and plane.dtype == np.uint8 and (plane.ndim == 2 or plane.shape[-1] in (1, 2, 4)):
            # As read_image does for Pillow files: 8-bit gray and RGBA become RGB, with a warning.
            warnings.warn(f"{page}: 8-bit image of shape {plane.shape} converted to RGB.", UserWarning, stacklevel=3)
            plane = plane[..., None] if plane.ndim == 2 else plane
            plane = plane[..., :3] if plane.shape[-1] == 4 else np.repeat(plane[..., :1], 3, -1)
        return plane

    def read(self, page):
        """``(pixels, rgb)``: the pixels as stored and as the backbone sees them (``(H, W, 3)`` uint8).

        Raises
        ------
        ValueError
            Naming the file (and plane), when it cannot be read or mapped by ``channels`` and
            ``intensity`` (e.g. a 16-bit image with ``intensity="8bit"``).
        """
        pixels = self.pixels(page)
        try:
            return pixels, to_rgb_uint8(pixels, self.channels, self.intensity, str(page))
        except TypeError as exc:
            raise ValueError(str(exc)) from None

    def rgb(self, page):
        """The image as the backbone sees it: ``(H, W, 3)`` uint8."""
        return self.read(page)[1]


def read_page_mask(page, mask_path, n_classes=None, ignore_index=255, shape=None):
    """The mask of ``page``: its file's mask, or plane ``page.index`` of a mask stack.

    The mask of a stack is a stack of as many planes in one file of the same stem: a TIFF stack, a
    zarr array or a ``.npy`` array of shape ``(planes, H, W)``.

    Parameters
    ----------
    page : ImagePage
    mask_path : path-like
    n_classes : int, default=None
        Check the labels against ``0..n_classes-1`` (and ``ignore_index``).
    ignore_index : int, default=255
    shape : tuple of int, default=None
        The image's shape; the mask's must match its first two entries.

    Returns
    -------
    ndarray of shape (H, W), int64
    """
    mask_path = Path(mask_path)
    if page.index is None:
        mask = read_mask(mask_path)
    else:
        masks = _mask_planes(mask_path)
        if len(masks) != page.count:
            raise ValueError(f"{mask_path} holds {len(masks)} mask plane(s), but its image {page.path} holds "
                             f"{page.count} planes: the mask of a stack is a stack of as many planes.")
        mask = np.asarray(masks[page.index])
        if mask.ndim != 2 or not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == bool):
            raise ValueError(f"{mask_path}[{page.index}]: a mask plane must be 2-D integer class indices, got "
                             f"shape {mask.shape}, {mask.dtype}.")
    if shape is not None:
        where = mask_path if page.index is None else f"{mask_path}[{page.index}]"
        check_mask_size(mask.shape, shape, str(where), f"its image {page}")
    mask = mask.astype(np.int64)
    if n_classes is not None:
        check_mask_labels(mask, n_classes, mask_path if page.index is None else f"{mask_path}[{page.index}]",
                          ignore_index)
    return mask


def _mask_planes(path):
    """The planes of a mask stack: ``.npy`` ``(planes, H, W)``, TIFF stack or zarr array."""
    if path.suffix.lower() == ".npy":
        try:
            _check_npy_header(path)
            stack = np.load(path, allow_pickle=False)
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decoding failure, named
            raise ValueError(f"Cannot read {path} as a .npy mask stack: {type(exc).__name__}: {exc}") from exc
        if stack.ndim != 3:
            raise ValueError(f"{path}: the mask of a stack must be a (planes, H, W) array, got shape {stack.shape}.")
        return list(stack)
    if _reads_as_array(path):
        return read_array_planes(path)
    raise ValueError(f"{path}: the mask of a stack must be a TIFF stack, a zarr array or a (planes, H, W) .npy "
                     "file of as many planes.")


def read_image_list(path, argument="--image-list"):
    """The image names of a list file: one per line, ``#`` starts a comment, blank lines skipped.

    Pass the result as ``only`` to :func:`list_images`, :func:`pair_images_and_masks` or
    :func:`load_image_folder`, which resolve the names (with or without extension) to files.

    Parameters
    ----------
    path : str or path-like
    argument : str, default="--image-list"
        How the file is called in error messages.

    Returns
    -------
    list of str

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it names no image.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from sklearn_ddpm.datasets._folders import read_image_list
    >>> path = pathlib.Path(tempfile.mkdtemp(), "train.txt")
    >>> _ = path.write_text("# training split\\nhorse001.jpg\\nhorse002\\n")
    >>> read_image_list(path)
    ['horse001.jpg', 'horse002']
    """
    path = _existing_file(path, argument)
    names = [line.split("#", 1)[0].strip() for line in _read_utf8(path, argument).splitlines()]
    names = [name for name in names if name]
    if not names:
        raise ValueError(f"{argument} {path} names no image.")
    return names


def pair_images_and_masks(image_dir, mask_dir, only=None, arrays=False):
    """Pair every image with the mask of the same file stem (``a.jpg`` ↔ ``a.png`` or ``a.npy``).

    Parameters
    ----------
    image_dir, mask_dir : str or path-like
        Folders of images (any Pillow format) and masks (PNG/TIFF/... of class indices, palette
        PNG, or ``.npy``).
    only : iterable of str, default=None
        Use only these images (see :func:`list_images`).
    arrays : bool, default=False
        Also pair zarr stores, and drop ``.ome`` from names (see :func:`list_images`).

    Returns
    -------
    FolderPairs
        ``pairs``, ``unpaired_images`` and ``unpaired_masks``.

    Raises
    ------
    ValueError
        If either folder is empty or no image has a mask.

    Examples
    --------
    >>> from sklearn_ddpm.datasets import pair_images_and_masks
    >>> found = pair_images_and_masks("photos/", "masks/")  # doctest: +SKIP
    >>> len(found.pairs), found.unpaired_images  # doctest: +SKIP
    (12, [PosixPath('photos/unlabelled.jpg')])
    """
    stem = image_stem if arrays else (lambda p: p.stem)
    images = {stem(p): p for p in list_images(image_dir, only=only, arrays=arrays)}
    masks = {stem(p): p for p in _list_files(mask_dir, image_extensions() | MASK_EXTENSIONS_EXTRA, "mask", "MASK_DIR",
                                             arrays=arrays)
             if only is None or stem(p) in images}
    pairs = [(images[s], masks[s]) for s in sorted(images) if s in masks]
    if not pairs:
        raise ValueError(
            f"no image of {image_dir} has a mask in {mask_dir}: images and masks are paired by file name "
            f"without extension (e.g. {next(iter(sorted(images)))}.jpg ↔ {next(iter(sorted(images)))}.png); "
            f"masks found: {_preview(sorted(masks))}."
        )
    return FolderPairs(
        pairs,
        [images[s] for s in sorted(images) if s not in masks],
        [masks[s] for s in sorted(masks) if s not in images],
    )


def read_class_names(path):
    """Read class names, in class-index order, from a JSON, YAML or text file.

    Accepted contents: a list of names (JSON/YAML), a mapping ``{index: name}`` covering
    ``0..K-1`` (JSON/YAML), either of those under a ``"names"`` or ``"classes"`` key, or a text
    file with one name per line (blank lines skipped).

    Parameters
    ----------
    path : str or path-like
        ``.json``, ``.yaml``/``.yml`` (needs PyYAML) or any other extension read as text.

    Returns
    -------
    list of str
        ``names[k]`` is the name of class ``k``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be parsed, is empty, has duplicate names or index gaps.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn_ddpm.datasets import read_class_names
    >>> path = Path(tempfile.mkdtemp()) / "classes.txt"
    >>> _ = path.write_text("background\\nhorse\\n")
    >>> read_class_names(path)
    ['background', 'horse']
    """
    path = _existing_file(path, "class-names")
    text = _read_utf8(path, "class-names file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            content = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as exc:
                raise ImportError(f"reading {path} needs PyYAML (pip install pyyaml); or use a .json or .txt file.") from exc
            content = yaml.safe_load(text)
        else:
            content = [line.strip() for line in text.splitlines() if line.strip()]
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"cannot parse the class-names file {path}: {exc}") from exc
    except Exception as exc:  # yaml.YAMLError does not derive from ValueError
        if type(exc).__module__.startswith("yaml"):
            raise ValueError(f"cannot parse the class-names file {path}: {exc}") from exc
        raise
    if isinstance(content, dict) and len(content) == 1 and next(iter(content)) in ("names", "classes"):
        content = next(iter(content.values()))
    if isinstance(content, dict):
        try:
            by_index = {int(k): v for k, v in content.items()}
        except (TypeError, ValueError):
            raise ValueError(f"{path}: a mapping of class names must have integer keys, got {list(content)[:5]}.") from None
        if sorted(by_index) != list(range(len(by_index))):
            raise ValueError(f"{path}: class indices must be 0..{len(by_index) - 1} without gaps, got {sorted(by_index)}.")
        content = [by_index[k] for k in range(len(by_index))]
    if not isinstance(content, list) or not all(isinstance(n, (str, int, float)) for n in content):
        raise ValueError(f"{path}: expected a list of class names or a mapping {{index: name}}, got {type(content).__name__}.")
    names = [str(n).strip() for n in content]
    if not names:
        raise ValueError(f"{path} holds no class names.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate class names {duplicates}.")
    return names


def default_class_names(n_classes, class_names=None):
    """Names of classes ``0..n_classes-1``: the given names, then ``"class k"`` for unnamed classes.

    Parameters
    ----------
    n_classes : int
        How many classes need a name.
    class_names : list of str, default=None
        Names of the first classes, e.g. from :func:`read_class_names`; never shortened.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from sklearn_ddpm.datasets._folders import default_class_names
    >>> default_class_names(3, ["background", "horse"])
    ['background', 'horse', 'class 2']
    """
    names = list(class_names or [])
    return names + [f"class {k}" for k in range(len(names), n_classes)]


def check_mask_labels(mask, n_classes, path, ignore_index=255):
    """Raise a ``ValueError`` naming ``path`` if ``mask`` has labels outside ``0..n_classes-1``.

    ``ignore_index`` pixels are allowed.
    """
    bad = ((mask < 0) | (mask >= n_classes)) & (mask != ignore_index)
    if bad.any():
        values = np.unique(mask[bad])
        raise ValueError(
            f"{path}: labels {values[:5].tolist()} are outside the {n_classes} classes 0..{n_classes - 1} "
            f"({int(bad.sum())} pixels); mark unlabelled pixels with {ignore_index}."
        )


def load_image_folder(image_dir, mask_dir=None, *, class_names=None, n_classes=None, ignore_index=255,
                      progress=False, only=None, channels=None, intensity="8bit"):
    """Load a folder of images and, optionally, the masks of the same file names.

    Images may have any size and any Pillow format, or be TIFF files and stacks or zarr /
    OME-Zarr stores (read with tifffile and zarr, ``pip install sklearn-ddpm[formats]``); a stack
    of several planes is several images (:class:`ImagePage`: ``STEM_0000``, ``STEM_0001``, ...)
    whose mask is a stack of as many planes. EXIF orientation is applied and 8-bit grayscale or
    RGBA images are converted to RGB with a warning; 16-bit, float and other channel counts are
    mapped to RGB by ``channels`` and ``intensity``. Images without a mask and masks without an
    image are reported with a ``UserWarning`` and left out.

    Parameters
    ----------
    image_dir : str or path-like
        Folder of images.
    mask_dir : str or path-like, default=None
        Folder of masks of class indices (single-channel or palette PNG, ``.npy``, ...), the same
        size as their images; ``ignore_index`` marks unlabelled pixels.
    class_names : str, path-like or list of str, default=None
        Names of the classes (or a file for :func:`read_class_names`); when given, labels must be
        ``0..len(class_names)-1`` or ``ignore_index``.
    n_classes : int, default=None
        The same check without names. Ignored when ``class_names`` is given.
    ignore_index : int, default=255
    progress : bool, default=False
        Show a progress bar.
    only : iterable of str, default=None
        Use only these images (names with or without extension), e.g. one split of a folder.
    channels : None, "mean" or tuple of int, default=None
        Which channels become R, G and B, as ``DDPMFeatureTransformer(channels=...)``.
    intensity : {"8bit", "percentile"}, default="8bit"
        How values become 0-255, as ``DDPMFeatureTransformer(intensity=...)``.

    Returns
    -------
    Bunch
        ``images`` (list of ``(H, W, 3)`` uint8, mapped by ``channels`` and ``intensity``),
        ``masks`` (list of ``(H, W)`` int64, or None), ``names`` (image names: file stems, with
        ``_k`` for plane k of a stack), ``pages`` (:class:`ImagePage` of every image),
        ``image_paths`` (the file of every image), ``mask_paths``, ``class_names`` (list or
        None), ``unpaired_images``, ``unpaired_masks``.

    Raises
    ------
    ValueError
        On an empty folder, a file that is not a readable image or mask, an image ``channels``
        and ``intensity`` do not map (a 16-bit image read as 8-bit, say), a mask whose size
        differs from its image's, or labels outside the classes; the message names the file.

    Examples
    --------
    >>> from sklearn_ddpm.datasets import load_image_folder
    >>> data = load_image_folder("photos/", "masks/", class_names=["background", "horse"])  # doctest: +SKIP
    >>> len(data.images), data.masks[0].shape == data.images[0].shape[:2]  # doctest: +SKIP
    (12, True)
    """
    if isinstance(class_names, (str, Path)):
        class_names = read_class_names(class_names)
    if class_names is not None:
        class_names = [str(n) for n in class_names]
        n_classes = len(class_names)
    if mask_dir is None:
        image_files, mask_files = list_images(image_dir, only=only, arrays=True), None
        unpaired_images, unpaired_masks = [], []
    else:
        found = pair_images_and_masks(image_dir, mask_dir, only=only, arrays=True)
        image_files = [p for p, _ in found.pairs]
        mask_files = [m for _, m in found.pairs]
        unpaired_images, unpaired_masks = found.unpaired_images, found.unpaired_masks
        for kind, unpaired, other in (("image", unpaired_images, "mask"), ("mask", unpaired_masks, "image")):
            if unpaired:
                warnings.warn(f"{len(unpaired)} {kind} file(s) without a matching {other} are left out: "
                              f"{_preview([p.name for p in unpaired])}.", UserWarning, stacklevel=2)
    pages, mask_paths = [], None if mask_files is None else []
    for i, path in enumerate(image_files):
        for page in file_pages(path):
            pages.append(page)
            if mask_files is not None:
                mask_paths.append(mask_files[i])
    reader = PageReader(channels, intensity)
    images, masks = [], [] if mask_paths is not None else None
    for i in tqdm(range(len(pages)), desc="reading", unit="img", disable=not progress):
        image = reader.rgb(pages[i])
        images.append(image)
        if mask_paths is None:
            continue
        masks.append(read_page_mask(pages[i], mask_paths[i], n_classes, ignore_index, shape=image.shape))
    if masks and all(np.isin(np.unique(m), (0, ignore_index)).all() for m in masks) and any((m == ignore_index).any() for m in masks):
        warnings.warn(
            f"the masks of {mask_dir} only hold 0 and {ignore_index}, and {ignore_index} means 'unlabelled': "
            f"if they are black/white binary masks, save the foreground as 1 instead of {ignore_index}.",
            UserWarning, stacklevel=2,
        )
    return Bunch(
        images=images,
        masks=masks,
        names=[page.stem for page in pages],
        pages=pages,
        image_paths=[page.path for page in pages],
        mask_paths=mask_paths,
        class_names=class_names,
        unpaired_images=unpaired_images,
        unpaired_masks=unpaired_masks,
    )


def read_mask_of(image, mask_path, image_path, n_classes=None, ignore_index=255):
    """Read the mask of ``image`` and check its size and, with ``n_classes``, its labels.

    Returns
    -------
    ndarray of shape (H, W), int64

    Raises
    ------
    ValueError
        Naming the files, when the mask's size differs from the image's or a label is outside
        ``0..n_classes-1`` and is not ``ignore_index``.
    """
    mask = read_mask(mask_path)
    check_mask_size(mask.shape, image.shape, str(mask_path), f"its image {image_path}")
    mask = mask.astype(np.int64)
    if n_classes is not None:
        check_mask_labels(mask, n_classes, mask_path, ignore_index)
    return mask


def _list_files(folder, extensions, kind, argument, arrays=False):
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"{argument} {str(folder)!r} does not exist.")
    if not folder.is_dir():
        raise NotADirectoryError(f"{argument} {str(folder)!r} is a file, not a folder.")
    files = sorted(p for p in folder.iterdir()
                   if not p.name.startswith(".") and (p.is_file() and p.suffix.lower() in extensions
                                                      or arrays and p.is_dir() and p.suffix.lower() == ".zarr"))
    if not files:
        raise ValueError(f"{argument} {str(folder)!r} holds no {kind} files (looked for "
                         f"{', '.join(sorted(e for e in extensions if e in _COMMON_EXTENSIONS))}, ...).")
    by_stem = {}
    for p in files:
        by_stem.setdefault(image_stem(p) if arrays else p.stem, []).append(p.name)
    clashes = {s: names for s, names in by_stem.items() if len(names) > 1}
    if clashes:
        stem, names = next(iter(clashes.items()))
        raise ValueError(f"{argument} {str(folder)!r} has {len(clashes)} file name(s) used by several {kind}s "
                         f"(e.g. {names}); files are paired by name without extension, so keep one per name.")
    return files


_COMMON_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".npy", ".zarr"}


def _preview(names, limit=5):
    names = [str(n) for n in names]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "none"


def _read_utf8(path, what):
    """The text of ``path``; bytes that are not UTF-8 are an error naming the file and the first bad byte."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                         f"{exc.start}); save it as UTF-8.") from None


def _existing_file(path, what):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    return path
