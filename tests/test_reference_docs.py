"""The campaign-file and accounts-file references on disk are what the models produce now."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scheduler import reference
from scheduler.platforms import PLATFORMS


@pytest.mark.parametrize("file_name", sorted(reference.pages()))
def test_reference_page_is_current(file_name: str) -> None:
    path = reference.DOCS / file_name
    wanted = reference.pages()[file_name]
    on_disk = path.read_text(encoding="utf-8") if path.exists() else ""
    assert on_disk == wanted, (
        f"docs/reference/{file_name} is out of date with the models; "
        f"regenerate it with `{reference.REGENERATE}` and commit the result"
    )


def test_every_key_is_documented() -> None:
    text = reference.campaign_reference()
    for model in reference.CAMPAIGN_MODELS:
        for key in model.model_fields:
            assert f"| `{key}` |" in text
    accounts = reference.accounts_reference()
    for name in sorted(PLATFORMS):
        assert f"## {name}\n" in accounts
        for key in PLATFORMS[name].settings_model.model_fields:
            assert f"| `{key}` |" in accounts


@pytest.mark.parametrize("model", reference.CAMPAIGN_MODELS, ids=lambda m: m.__name__)
def test_campaign_examples_are_valid(model: type) -> None:
    model.model_validate(yaml.safe_load(reference.CAMPAIGN_EXAMPLES[model.__name__]))


@pytest.mark.parametrize("name", sorted(PLATFORMS))
def test_account_examples_are_valid(name: str) -> None:
    platform = PLATFORMS[name]
    example = reference.account_example(name, platform.settings_model, platform.secret_fields)
    (settings,) = yaml.safe_load(example).values()
    # the loader puts the environment's value in place of ${VAR} before validating
    filled = {
        k: "https://example.org/x" if str(v).startswith("${") else v for k, v in settings.items()
    }
    platform.settings_model.model_validate(filled)


def test_main_writes_the_pages(tmp_path: Path) -> None:
    folder = tmp_path
    assert reference.main([str(folder)]) == 0
    for file_name, text in reference.pages().items():
        assert (folder / file_name).read_text(encoding="utf-8") == text
