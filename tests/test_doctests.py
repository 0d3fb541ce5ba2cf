"""The examples in engage_core's docstrings run as written: they are the API's shortest
documentation (docs/engine.md points to them), so a stale one is a defect."""

import doctest
import importlib
import pkgutil

import pytest

import engage_core


def _modules_with_examples():
    finder = doctest.DocTestFinder()
    for info in sorted(pkgutil.iter_modules(engage_core.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"engage_core.{info.name}")
        if any(t.examples for t in finder.find(module)):
            yield info.name


MODULES = list(_modules_with_examples())


def test_the_public_modules_have_examples():
    # the collection below found the modules it should (an empty list would test nothing)
    assert {"activity", "events", "retention"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(f"engage_core.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=False)
    assert result.attempted > 0 and result.failed == 0, f"engage_core.{name}: {result}"
