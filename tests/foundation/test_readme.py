"""The README stays true: its config reference is the schema's, and its commands exist."""

from morphcpt.config_reference import readme_section, reference_markdown


def test_readme_config_reference_is_generated_from_the_current_schema(repo_root):
    readme = (repo_root / "README.md").read_text()
    assert readme_section(readme) == reference_markdown(), "run: morphcpt config-reference --write README.md"


def test_readme_quickstart_commands_exist(repo_root):
    readme = (repo_root / "README.md").read_text()
    makefile = (repo_root / "Makefile").read_text()
    for command in ("make demo", "make test", "morphcpt install-profile", "snakemake --profile slurm all_llama", "morphcpt plan all_llama --full"):
        assert command in readme
    assert "\ndemo: setup" in makefile and "\ntest: setup" in makefile and "\nprofile: setup" in makefile
