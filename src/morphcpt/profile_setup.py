"""`morphcpt install-profile`: make `snakemake --profile slurm` find this repository's profile.

Snakemake resolves a bare profile name in the current directory, then in the user's Snakemake
config folder (`~/.config/snakemake`, or `$XDG_CONFIG_HOME/snakemake`), then in the site folder
(`/etc/xdg/snakemake`, or the first of `$XDG_CONFIG_DIRS`) — never in `profiles/`. This command
links `<user config>/snakemake/<name>` to `profiles/<profile>` of this repository, so later edits
of the repository's profile apply without copying. It never replaces or shadows a profile of the
same name that is already there (many clusters ship a site profile called `slurm`): it stops and
says what to do instead. Running it again is a no-op.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from platformdirs import AppDirs

from morphcpt.errors import MorphcptError

REPO_ROOT = Path(__file__).resolve().parents[2]
PROFILES_DIR = REPO_ROOT / "profiles"


def snakemake_profile_dirs() -> tuple[Path, Path]:
    """(user, site) folders where Snakemake looks up a bare profile name (as Snakemake computes them)."""
    dirs = AppDirs("snakemake", "snakemake")
    return Path(dirs.user_config_dir), Path(dirs.site_config_dir)


def _points_to(link: Path, target: Path) -> bool:
    return link.is_symlink() and link.resolve() == target.resolve()


def install_profile(profile: str = "slurm", name: str | None = None) -> tuple[Path, bool]:
    """Link <user config>/snakemake/<name> -> profiles/<profile>.

    Returns (link path, created). created is False when the link was already there.
    Raises MorphcptError, touching nothing, when another profile of that name exists in the user
    or site folder (replacing or shadowing it would change how other workflows run).
    """
    name = name or profile
    source = PROFILES_DIR / profile
    if not (source / "config.yaml").is_file():
        known = sorted(p.name for p in PROFILES_DIR.iterdir() if (p / "config.yaml").is_file())
        raise MorphcptError(f"no profile {profile!r} in {PROFILES_DIR} (known: {', '.join(known)})")
    if "/" in name or name in ("", ".", ".."):
        raise MorphcptError(f"--name {name!r}: give a plain profile name such as 'morphcpt-slurm'")

    user_dir, site_dir = snakemake_profile_dirs()
    link = user_dir / name
    if _points_to(link, source):
        return link, False
    instead = (
        f"Nothing was changed. Either link this repository's profile under another name and use that "
        f"name (`morphcpt install-profile --name morphcpt-{name}`, then "
        f"`snakemake --profile morphcpt-{name} all_llama`), or give the profile as a path from the "
        f"repository root (`snakemake --profile profiles/{profile} all_llama`)."
    )
    for existing in (link, site_dir / name):
        if existing.exists() or existing.is_symlink():
            what = f"a link to {os.readlink(existing)}" if existing.is_symlink() else "another profile"
            where = "site" if existing.parent == site_dir else "user"
            raise MorphcptError(f"{existing} is {what} (Snakemake's {where} profile folder). {instead}")

    user_dir.mkdir(parents=True, exist_ok=True)
    link.symlink_to(source.resolve(), target_is_directory=True)
    return link, True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "profile", nargs="?", default="slurm", help="profile folder under profiles/ (default: slurm)"
    )
    parser.add_argument(
        "--name", default=None, help="name to use with --profile (default: the profile's own name)"
    )


def run(args: argparse.Namespace) -> int:
    link, created = install_profile(args.profile, args.name)
    state = "linked" if created else "already linked"
    print(f"{state}: {link} -> {link.resolve()}")
    print(f"run from the repository root: snakemake --profile {link.name} all_llama")
    return 0
