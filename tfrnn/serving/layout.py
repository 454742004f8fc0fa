"""TF Serving's folder layout, EXPORT_ROOT/NAME/<version>/saved_model.pb: which folders are
models and versions. Export, models.config and `tfrnn serve` all read the layout through here.

A version folder is named by its number in decimal, ASCII digits only ("7"; never "07", "²" or
"١", which `str.isdigit` accepts too). A version is complete once it holds saved_model.pb: an
export is staged in a dot-folder and renamed into place, so a half-written one is never
complete, and dot-folders are never models or versions.
"""

from pathlib import Path


def version_number(name):
    """The version a folder name stands for.

    Args:
        name: str. A folder name under a model's folder.

    Returns:
        int, or None when `name` names no version.
    """
    if name.isascii() and name.isdigit() and name == str(int(name)):
        return int(name)
    return None


def versions(model_dir, complete=True):
    """The versions in a model's folder.

    Args:
        model_dir: str or Path. The model's folder (EXPORT_ROOT/NAME); it may not exist.
        complete: bool. Only versions holding saved_model.pb (those TF Serving loads); False
            counts half-written ones too (the numbers already taken).

    Returns:
        sorted list of int, oldest first.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    found = []
    for folder in model_dir.iterdir():
        number = version_number(folder.name)
        if number is not None and folder.is_dir() and (not complete or (folder / "saved_model.pb").is_file()):
            found.append(number)
    return sorted(found)


def next_version(model_root):
    """The version number the next export takes: one past every version folder, complete or not.

    Args:
        model_root: str or Path. The model's folder (EXPORT_ROOT/NAME); it may not exist.

    Returns:
        int, 1 when there is no version yet.
    """
    return max(versions(model_root, complete=False), default=0) + 1


def is_model_name(name):
    """Whether `name` names a model: one path component that is not a dot-folder.

    Args:
        name: str. A folder name, or a name from a request.

    Returns:
        bool.
    """
    return bool(name) and not name.startswith(".") and "/" not in name and "\\" not in name


def model_names(export_root):
    """The models under an export root: folders with at least one complete version.

    Args:
        export_root: str or Path. The folder holding NAME/<version>/ exports.

    Returns:
        sorted list of str.
    """
    return sorted(
        folder.name
        for folder in Path(export_root).iterdir()
        if folder.is_dir() and is_model_name(folder.name) and versions(folder)
    )
