"""A browser recipe from what Playwright's recorder wrote (`playwright codegen --target python`, sync or async).

An admin records the task once in a real browser and imports the script: each recorded action becomes a recipe step,
with the selectors the recorder chose (`get_by_role`, `get_by_label`… become `role=`, `label=`… selectors). The script
is read, never run (Python's `ast`); anything that is not a recorded action is listed as not converted. Text the
recorder saw typed becomes an input field of the recipe (`{workflow_name}`), so neither test data nor a password
recorded by mistake ends up in the recipe.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from adapters.browser import BrowserConfig

_ACTIONS = {"click", "dblclick", "check", "uncheck", "fill", "press", "select_option", "hover", "set_input_files"}
_SETUP = {"launch", "new_context", "new_page", "close", "stop", "start", "set_default_timeout"}


@dataclass
class ImportedRecipe:
    """The recipe (its JSON form), the origins its pages are on, and what could not be converted, by line."""

    recipe: dict[str, Any]
    origins: list[str]
    notes: list[str] = field(default_factory=list)

    def config(self, capability: str) -> dict[str, Any]:
        """A browser config holding just this recipe, to register (or merge into one) once checked."""
        return {"origins": self.origins, "capabilities": {capability: self.recipe}}


class CodegenNotUnderstood(ValueError):
    """The text is not Python, or holds no recorded action."""


@dataclass
class _Target:
    selector: str | None = None
    frame: str | None = None
    hint: str = ""
    """What a person calls the element (its label, name or placeholder): names the input field typed into it."""


def _string(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((keyword.value for keyword in call.keywords if keyword.arg == name), None)


def _quoted(text: str) -> str:
    return json.dumps(text)


def _selector(method: str, call: ast.Call) -> str | None:
    """The recipe selector of a `page.get_by_*(…)` or `page.locator(…)` call, or None when it cannot be written."""
    first = _string(call.args[0]) if call.args else None
    exact_node = _keyword(call, "exact")
    exact = isinstance(exact_node, ast.Constant) and exact_node.value is True
    if first is None:
        return None
    if method == "locator":
        return first
    if method == "get_by_role":
        name_node = _keyword(call, "name")
        name = _string(name_node) if name_node is not None else None
        if name_node is not None and name is None:
            return None  # a regular expression name: not written as a selector here
        return f"role={first}" + (f"[name={_quoted(name)}{' s' if exact else ''}]" if name is not None else "")
    if method == "get_by_text":
        return f"text={_quoted(first)}" if exact else f"text={first}"
    if method == "get_by_label":
        return f"label={first}"
    if method == "get_by_placeholder":
        return f"placeholder={first}"
    if method == "get_by_test_id":
        return f"[data-testid={_quoted(first)}]"
    if method == "get_by_title":
        return f"[title={_quoted(first)}]"
    if method == "get_by_alt_text":
        return f"[alt={_quoted(first)}]"
    return None


def _chain(node: ast.expr) -> list[tuple[str, ast.Call | None]] | None:
    """`page.a(…).b.c(…)` as [("a", call), ("b", None), ("c", call)]; None unless it starts at a page."""
    links: list[tuple[str, ast.Call | None]] = []
    while True:
        if isinstance(node, ast.Await):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            links.append((node.func.attr, node))
            node = node.func.value
        elif isinstance(node, ast.Attribute):
            links.append((node.attr, None))
            node = node.value
        elif isinstance(node, ast.Name):
            return list(reversed(links)) if node.id.startswith("page") else None
        else:
            return None


def _field_name(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "text"
    if not base[0].isalpha():
        base = f"field_{base}"
    name, number = base[:40], 2
    while name in taken:
        name, number = f"{base[:36]}_{number}", number + 1
    taken.add(name)
    return name


class _Reader:
    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.origins: list[str] = []
        self.notes: list[str] = []
        self.fields: set[str] = set()
        self.labels: dict[tuple[str | None, str], str] = {}

    def statements(self, body: list[ast.stmt], *, downloading: bool = False) -> None:
        for statement in body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                self.statements(statement.body)
            elif isinstance(statement, ast.With | ast.AsyncWith):
                expects_download = any(
                    (chain := _chain(item.context_expr)) is not None and chain[-1][0] == "expect_download"
                    for item in statement.items
                )
                self.statements(statement.body, downloading=expects_download)
            elif isinstance(statement, ast.Expr):
                self.expression(statement.value, statement.lineno, downloading=downloading)
            elif isinstance(statement, ast.Import | ast.ImportFrom | ast.Assign | ast.Pass):
                continue  # imports, `browser = …`, `download = download_info.value`: the recorder's scaffolding
            elif isinstance(statement, ast.If | ast.Try):
                self.notes.append(f"line {statement.lineno}: not converted (a recipe has no branches)")

    def expression(self, node: ast.expr, line: int, *, downloading: bool) -> None:
        if isinstance(node, ast.Await):
            node = node.value
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.startswith("to_"):
            self.expectation(node, line)
            return
        chain = _chain(node)
        if chain is None:
            return  # not the page: the recorder's scaffolding (closing the browser, running the script)
        method, call = chain[-1]
        if method in _SETUP:
            return
        if method == "goto" and call is not None and call.args and (url := _string(call.args[0])):
            self.goto(url)
            return
        if method not in _ACTIONS or call is None:
            self.notes.append(f"line {line}: {method} is not a recipe step; not converted")
            return
        keyboard = [link[0] for link in chain[:-1]] == ["keyboard"]
        if keyboard and method == "press" and call.args and (key := _string(call.args[0])):
            self.steps.append({"kind": "press", "key": key})
            return
        target = self.target(chain[:-1], line)
        if target is None or target.selector is None:
            self.notes.append(f"line {line}: the element's selector could not be written; not converted")
            return
        self.action(method, call, target, line, downloading=downloading)

    def goto(self, url: str) -> None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self.origins:
            self.origins.append(origin)
        self.steps.append({"kind": "goto", "url": url.replace("{", "{{").replace("}", "}}")})

    def target(self, links: list[tuple[str, ast.Call | None]], line: int) -> _Target | None:
        target = _Target()
        for method, call in links:
            if method in ("first", "last") and call is None:
                continue
            if method == "nth" or method == "filter":
                self.notes.append(f"line {line}: {method}() dropped: the step acts on the first match")
                continue
            if method == "frame_locator" and call is not None:
                target.frame, target.selector = (_string(call.args[0]) if call.args else None), None
                continue
            if method == "content_frame" and call is None:
                target.frame, target.selector = target.selector, None
                continue
            if call is None:
                return None
            selector = _selector(method, call)
            if selector is None:
                return None
            target.selector = f"{target.selector} >> {selector}" if target.selector else selector
            name = _keyword(call, "name") if method == "get_by_role" else (call.args[0] if call.args else None)
            target.hint = (_string(name) if name is not None else None) or target.hint
        return target

    def action(self, method: str, call: ast.Call, target: _Target, line: int, *, downloading: bool) -> None:
        where: dict[str, Any] = {"selector": target.selector}
        if target.frame is not None:
            where["frame"] = target.frame
        assert target.selector is not None
        if method in ("click", "dblclick", "check", "uncheck"):
            kind = "download" if downloading else "click"
            self.steps.append({"kind": kind, **where})
        elif method == "hover":
            self.steps.append({"kind": "hover", **where})
        elif method == "press":
            key = _string(call.args[0]) if call.args else None
            if key is None:
                self.notes.append(f"line {line}: press without a key; not converted")
                return
            self.steps.append({"kind": "press", **where, "key": key})
        elif method in ("fill", "select_option"):
            name = self.input_field(target)
            self.steps.append({"kind": "fill" if method == "fill" else "select", **where, "value": f"{{{name}}}"})
        elif method == "set_input_files":
            name = self.input_field(target)
            self.steps.append(
                {"kind": "upload", **where, "name": f"{{{name}_file_name}}", "content": f"{{{name}_content}}"}
            )

    def input_field(self, target: _Target) -> str:
        """The input field that takes what was typed into this element (the same one each time it is typed into)."""
        assert target.selector is not None
        key = (target.frame, target.selector)
        if key not in self.labels:
            self.labels[key] = _field_name(target.hint or target.selector, self.fields)
        return self.labels[key]

    def expectation(self, node: ast.Call, line: int) -> None:
        subject = node.func.value if isinstance(node.func, ast.Attribute) else None
        if (
            isinstance(subject, ast.Call)
            and isinstance(subject.func, ast.Name)
            and subject.func.id == "expect"
            and subject.args
            and (chain := _chain(subject.args[0])) is not None
            and (target := self.target(chain, line)) is not None
            and target.selector is not None
        ):
            step: dict[str, Any] = {"kind": "wait_for", "selector": target.selector}
            if target.frame is not None:
                step["frame"] = target.frame
            self.steps.append(step)
            return
        self.notes.append(f"line {line}: this expectation is not converted")


def recipe_from_codegen(source: str, *, description: str = "") -> ImportedRecipe:
    """The recipe Playwright codegen's Python `source` records; raises `CodegenNotUnderstood`."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise CodegenNotUnderstood(f"not Python (line {error.lineno}: {error.msg})") from None
    reader = _Reader()
    reader.statements(tree.body)
    if not reader.steps:
        raise CodegenNotUnderstood("no recorded action found: paste what `playwright codegen --target python` wrote")
    if reader.steps[0]["kind"] != "goto":
        reader.notes.append("the recording does not start with page.goto: add a goto step first")
    recipe: dict[str, Any] = {"description": description, "steps": reader.steps}
    return ImportedRecipe(recipe=recipe, origins=reader.origins, notes=reader.notes)


def checked_config(imported: ImportedRecipe, capability: str) -> dict[str, Any]:
    """The imported recipe as a config, checked as registering it would; raises `AgentConfigInvalid`."""
    config = imported.config(capability)
    BrowserConfig.from_dict(config, name="imported")
    return config
