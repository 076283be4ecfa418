"""The docs' claims that a machine can check: names they cite exist, maps are complete.

- every `common.<module>[.<name>]` cited in docs/*.md or the README imports (a renamed or
  removed helper, such as the old `common.db.is_transient`, fails here, not in a reader's head);
- the README's folder map names every top-level folder of the repository;
- the Makefile's `.PHONY` names exactly the targets the Makefile defines.
"""

import importlib
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMON_REF = re.compile(r"`(common(?:\.[a-z_][a-z0-9_]*)+)`")


def resolves(dotted: str) -> bool:
    """`dotted` is a module, or an attribute (a function, class, constant) of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_resolves_tells_real_names_from_gone_ones() -> None:
    assert resolves("common.db.is_event_error")
    assert resolves("common.contracts")
    assert not resolves("common.db.is_transient")
    assert not resolves("common.no_such_module")


def test_every_cited_common_name_exists() -> None:
    cited = {(doc.relative_to(ROOT).as_posix(), ref)
             for doc in DOCS for ref in COMMON_REF.findall(doc.read_text())}
    assert len(cited) > 10, "the pattern no longer finds the docs' references"
    missing = sorted(f"{doc}: {ref}" for doc, ref in cited if not resolves(ref))
    assert not missing, "docs cite names that do not exist:\n" + "\n".join(missing)


def readme_map() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Where things are", 1)[1]
    return section.split("```", 2)[1]


def test_readme_map_names_every_top_level_folder() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    folders = {path.split("/", 1)[0] for path in tracked if "/" in path}
    folders -= {".ci"}  # the CI runner's own files, not the project's
    assert {"libs", "services", "tools", "scripts", "bench"} <= folders
    listed = readme_map()
    missing = sorted(f for f in folders if not re.search(rf"^{re.escape(f)}/", listed, re.M))
    assert not missing, f"README's 'Where things are' omits: {missing}"


def test_makefile_phony_lists_exactly_its_targets() -> None:
    text = (ROOT / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY:(.*)$", text, re.M).group(1).split())  # type: ignore[union-attr]
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", text, re.M))
    assert targets, "no targets found"
    assert phony == targets, (f".PHONY names missing targets: {sorted(phony - targets)}; "
                              f"targets not in .PHONY: {sorted(targets - phony)}")
