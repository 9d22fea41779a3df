"""The architecture, checked: planner/ knows nothing of Teams or vendors; a Teams SDK stays in bot/teams/; the domain is
pure; only planner/store/ talks to the database, each table written by one of its modules; no state at module level;
the planner's errors leave the words a person reads to bot/text/."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("planner", {"bot", "adapters", "botbuilder", "botframework", "aiohttp", "playwright", "mcp", "anthropic"}),
        ("adapters", {"bot", "botbuilder", "botframework"}),
    ],
)
def test_package_does_not_import_the_layers_above_it(package: str, forbidden: set[str]) -> None:
    offenders = {
        path: sorted(names & forbidden) for path, names in imported_modules(package).items() if names & forbidden
    }
    assert offenders == {}


TEAMS_SDKS = {"botbuilder", "botframework", "msrest"}


def test_only_bot_teams_imports_a_teams_sdk() -> None:
    offenders = {
        path: sorted(names & TEAMS_SDKS)
        for path, names in imported_modules("bot").items()
        if names & TEAMS_SDKS and not path.startswith("bot/teams/")
    }
    assert offenders == {}


DOMAIN_MAY_IMPORT = {
    *("__future__", "collections", "dataclasses", "datetime", "enum", "math", "re", "typing", "zoneinfo"),
    *("decimal", "difflib", "hashlib", "hmac", "json", "operator"),
    "urllib.parse",
}
"""The standard library's values and pure helpers; nothing that reaches a database, a network, a file or a process."""
CLOCK_READS = ("datetime.now(", "datetime.utcnow(", "date.today(", "time.time(", "time.monotonic(", "utcnow(")


def test_the_domain_is_pure_rules_and_values() -> None:
    """planner/domain/ imports only the standard library's values and the domain itself, and never reads a clock: a
    test runs its rules with no database, no Teams and no network, at whatever time it says."""
    imports: dict[str, set[str]] = {}
    clock_reads: dict[str, list[str]] = {}
    for path in (ROOT / "planner" / "domain").rglob("*.py"):
        source = path.read_text()
        names: set[str] = set()
        for node in ast.walk(ast.parse(source, filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        outside = {
            name
            for name in names
            if name not in DOMAIN_MAY_IMPORT
            and name.split(".")[0] not in DOMAIN_MAY_IMPORT
            and not name.startswith("planner.domain")
        }
        if outside:
            imports[str(path.relative_to(ROOT))] = outside
        reads = [read for read in CLOCK_READS if read in source]
        if reads:
            clock_reads[str(path.relative_to(ROOT))] = reads
    assert imports == {}
    assert clock_reads == {}


DATABASE_LIBRARIES = {"sqlalchemy", "alembic"}


def test_only_the_store_talks_to_the_database() -> None:
    """SQLAlchemy (and Alembic) are imported by planner/store/ alone: the domain, the services, the adapters and the
    bot reach the database through the store's functions, which answer with domain values."""
    offenders = {
        path: sorted(names & DATABASE_LIBRARIES)
        for package in ("planner", "bot", "adapters")
        for path, names in imported_modules(package).items()
        if names & DATABASE_LIBRARIES and not path.startswith("planner/store/")
    }
    assert offenders == {}


WRITES = {"insert", "update", "delete", "upsert"}
"""Calls that write the table they are given: `insert(plans)`, `upsert(conn, plan_health, …)`, `plans.update()`."""


def _written_tables(tree: ast.AST, tables: set[str]) -> set[str]:
    written: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if isinstance(func, ast.Attribute) and func.attr in WRITES and isinstance(func.value, ast.Name):
            written.update({func.value.id} & tables)  # plans.update()
        if name not in WRITES:
            continue
        for arg in node.args[:2]:  # insert(plans) / upsert(conn, plans, …)
            if isinstance(arg, ast.Name) and arg.id in tables:
                written.add(arg.id)
            elif isinstance(arg, ast.Attribute) and arg.attr in tables:
                written.add(arg.attr)
    return written


def test_each_table_has_one_writer() -> None:
    """Every table is written by exactly one module of planner/store/: its rules have one home, and a change to how a
    row is kept is made in one place."""
    from planner.store.schema import metadata

    tables = set(metadata.tables)
    writers: dict[str, set[str]] = {table: set() for table in tables}
    for path in (ROOT / "planner").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for table in _written_tables(tree, tables):
            writers[table].add(str(path.relative_to(ROOT)))
    shared = {table: sorted(modules) for table, modules in writers.items() if len(modules) > 1}
    outside = {
        table: sorted(m for m in modules if not m.startswith("planner/store/"))
        for table, modules in writers.items()
        if any(not m.startswith("planner/store/") for m in modules)
    }
    assert shared == {}
    assert outside == {}
    assert {table for table, modules in writers.items() if not modules} == set()  # every write was seen


def test_no_module_level_state_in_the_planner() -> None:
    """The planner keeps no state at module level (a cache of a function, a dictionary filled at run time): what one
    process learns lives on the objects the composition root builds, so two stores or two tests never share it."""
    found: dict[str, list[str]] = {}
    for path in (ROOT / "planner").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for decorator in node.decorator_list:
                    target = decorator.func if isinstance(decorator, ast.Call) else decorator
                    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                    if name in {"cache", "lru_cache"}:
                        found.setdefault(str(path.relative_to(ROOT)), []).append(node.name)
        for node in tree.body:
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            if isinstance(value, ast.Call):
                callee = value.func.attr if isinstance(value.func, ast.Attribute) else getattr(value.func, "id", "")
                if callee in {"WeakKeyDictionary", "WeakValueDictionary", "dict", "defaultdict"}:
                    found.setdefault(str(path.relative_to(ROOT)), []).append(callee)
            if isinstance(value, ast.Dict) and not value.keys:
                found.setdefault(str(path.relative_to(ROOT)), []).append("{}")
    assert found == {}


def test_the_store_knows_nothing_of_the_use_cases() -> None:
    """planner/store/ answers with domain values and never calls up into the services or the gate above it."""
    above = ("planner.services", "planner.governance")
    offenders: dict[str, list[str]] = {}
    for path in (ROOT / "planner" / "store").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(above):
                offenders.setdefault(str(path.relative_to(ROOT)), []).append(node.module)
    assert offenders == {}


TENANT_SERVICES = {
    *("Plans", "Directory", "Drafts", "Questions", "Measurement", "Playbooks", "PolicyEngine", "PolicySets"),
    *("DecisionLog", "Approvals", "ContextFacts", "MetricEvents", "Outbox", "AssistantMemory"),
}
"""The use cases `planner.services.tenants.Tenants` builds once per tenant for the bot."""
BUILT_OUTSIDE_THE_ROOT = {
    # One-shot commands: each `cos` run is a process of its own, with nothing to share its services with.
    ("bot/cli.py", "*"),
    # Approvals for one caller: the model's decisions are written as the model's (see `Context.record`).
    ("bot/governance.py", "Approvals"),
    ("bot/operations/approvals.py", "Approvals"),
}


def test_the_bot_takes_each_tenants_services_from_the_composition_root() -> None:
    """A turn, a tick or a delegation asks `Tenants` for a tenant's services instead of building its own."""
    offenders = set()
    for path in sorted((ROOT / "bot").rglob("*.py")):
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in TENANT_SERVICES:
                offenders.add((where, node.func.id))
    allowed = {(path, name) for path, name in offenders if {(path, "*"), (path, name)} & BUILT_OUTSIDE_THE_ROOT}
    assert offenders - allowed == set()


ADVICE = ("`", "Did you mean", "Known ", "List the", "Show the", "Type ", "Choose ", "try again", "An admin", "Run ")
"""What a person is told to do (a command to type, a name to pick): the bot's words, in bot/text/errors.py."""


def _planner_error_classes() -> dict[str, tuple[str, ast.ClassDef]]:
    """The exception classes defined in planner/ (by name), each with its module's path and its definition."""
    classes: dict[str, tuple[str, ast.ClassDef]] = {}
    for path in (ROOT / "planner").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ClassDef):
                classes[node.name] = (str(path.relative_to(ROOT)), node)
    errors = {"Exception", "BaseException"}
    grew = True
    while grew:
        found = {
            name
            for name, (_, node) in classes.items()
            if any(
                getattr(base, "id", getattr(base, "attr", "")) in errors or ast.unparse(base).endswith("Error")
                for base in node.bases
            )
        }
        grew = not found <= errors
        errors |= found
    return {name: found for name, found in classes.items() if name in errors}


def test_the_planners_errors_leave_what_to_do_to_the_bot() -> None:
    """An error raised in planner/ keeps what went wrong in its fields and states it plainly; the reply a person reads,
    with the command that helps, is written in bot/text/errors.py (a test there checks every error has one)."""
    offenders: dict[str, list[str]] = {}
    for name, (path, node) in _planner_error_classes().items():
        for method in node.body:
            if isinstance(method, ast.FunctionDef) and method.name == "__init__":
                words = [n.value for n in ast.walk(method) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
                said = [advice for advice in ADVICE for text in words if advice in text]
                if said:
                    offenders[f"{path}:{name}"] = said
    assert offenders == {}


def _expected_members(node: ast.expr) -> list[str] | None:
    """The Expected members an `expected` argument names (`Expected.X`, or `Expected.X if … else Expected.Y`); None
    when it is anything else (a phrase, an f-string, a join)."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Expected":
        return [node.attr]
    if isinstance(node, ast.IfExp):
        body, orelse = _expected_members(node.body), _expected_members(node.orelse)
        return body + orelse if body is not None and orelse is not None else None
    return None


def _field_member(node: ast.expr) -> str | None:
    """The Field member a `field` argument names (`Field.X`), or None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Field":
        return node.attr
    return None


def _fields_passed_through(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names in `function` that hold a Field: its parameters annotated `Field`, and the first name of a `for` over
    pairs that each start with `Field.X`."""
    arguments = function.args.posonlyargs + function.args.args + function.args.kwonlyargs
    names = {arg.arg for arg in arguments if arg.annotation is not None and ast.unparse(arg.annotation) == "Field"}
    for loop in ast.walk(function):
        if not (isinstance(loop, ast.For) and isinstance(loop.target, ast.Tuple) and isinstance(loop.iter, ast.Tuple)):
            continue
        first = loop.target.elts[0]
        pairs = loop.iter.elts
        if isinstance(first, ast.Name) and all(isinstance(p, ast.Tuple) and _field_member(p.elts[0]) for p in pairs):
            names.add(first.id)
    return names


def test_the_planner_says_what_a_field_expects_as_data_never_as_a_phrase() -> None:
    """Every InvalidValue raised in planner/ names its field as a `Field` member (or a parameter holding one) and the
    form it expected as an `Expected` member, with exactly the details (bounds, choices, dates; whose field it is) the
    two members list: the phrases a person reads are the bot's (bot/text/errors.py)."""
    from planner.domain.errors import Expected, Field

    sites = 0
    offenders: list[str] = []
    for path in (ROOT / "planner").rglob("*.py"):
        module = ast.parse(path.read_text(), filename=str(path))
        relative = str(path.relative_to(ROOT))
        passed_through: dict[ast.AST, set[str]] = {}
        for function in ast.walk(module):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(function):  # a nested function sees its enclosing ones' names too
                    passed_through.setdefault(inner, set()).update(_fields_passed_through(function))
        for node in ast.walk(module):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "InvalidValue":
                sites += 1
                where = f"{relative}:{node.lineno}"
                given = node.args[2] if len(node.args) > 2 else None
                members = _expected_members(given) if given is not None else None
                if members is None or len(node.args) != 3:
                    offenders.append(f"{where}: expected is not an Expected member")
                    continue
                named = node.args[0]
                field = _field_member(named)
                field_details: tuple[str, ...] = ()
                if field is not None:
                    if field not in Field.__members__:
                        offenders.append(f"{where}: no Field.{field}")
                        continue
                    field_details = Field[field].details
                elif not (isinstance(named, ast.Name) and named.id in passed_through.get(node, set())):
                    offenders.append(f"{where}: the field is not a Field member")
                details = {keyword.arg for keyword in node.keywords}
                for member in members:
                    if member not in Expected.__members__:
                        offenders.append(f"{where}: no Expected.{member}")
                    elif details != {*Expected[member].details, *field_details}:
                        wanted = (*field_details, *Expected[member].details)
                        offenders.append(f"{where}: {field} and Expected.{member} take {wanted}, given {details}")
    assert sites > 50
    assert offenders == []


def test_the_planner_lists_a_documents_problems_as_data_never_as_sentences() -> None:
    """A problem of a posted document (rules, context facts, metric or spend events) is a `Problem` naming its
    `ProblemCode` and exactly the details that code lists; the sentence an admin or integrator reads is the bot's
    (bot/text/problems.py)."""
    from planner.domain.problems import ProblemCode

    sites = 0
    offenders: list[str] = []
    for path in (ROOT / "planner").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            sentence = any(isinstance(arg, ast.Constant | ast.JoinedStr | ast.BinOp) for arg in node.args)
            if called == "append" and ast.unparse(node.func).endswith("problems.append") and sentence:
                offenders.append(f"{where}: a problem written as a sentence")
            if called not in ("Problem", "problem") or not node.args:
                continue
            code = node.args[0]
            if not (isinstance(code, ast.Attribute) and ast.unparse(code.value) == "ProblemCode"):
                continue
            sites += 1
            details = {keyword.arg for keyword in node.keywords}
            if code.attr not in ProblemCode.__members__:
                offenders.append(f"{where}: no ProblemCode.{code.attr}")
            elif details != set(ProblemCode[code.attr].details):
                offenders.append(f"{where}: {code.attr} takes {ProblemCode[code.attr].details}, given {details}")
    assert sites > 40
    assert offenders == []


def _planner_trees() -> list[tuple[str, ast.AST]]:
    return [
        (str(path.relative_to(ROOT)), ast.parse(path.read_text(), filename=str(path)))
        for path in (ROOT / "planner").rglob("*.py")
    ]


def _written_words(node: ast.AST) -> bool:
    """Whether an expression writes words of its own: an f-string or a non-empty string literal anywhere in it."""
    return any(
        isinstance(n, ast.JoinedStr) or (isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.strip())
        for n in ast.walk(node)
    )


def test_the_planner_logs_why_as_a_code_and_data_never_as_a_sentence() -> None:
    """A decision-log entry planner/ writes says why with a `LogReason` in its data, worded in bot/text/decisions.py;
    its `rationale` only passes on words it was given (an approver's note). So no `rationale=` argument, and no
    variable named `rationale`, is given a string literal or an f-string in planner/."""
    offenders = []
    for where, tree in _planner_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "rationale" and _written_words(node.value):
                offenders.append(f"{where}:{node.value.lineno}: rationale={ast.unparse(node.value)}")
            elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                named = any(isinstance(t, ast.Name) and t.id == "rationale" for t in targets)
                if named and _written_words(node.value):
                    offenders.append(f"{where}:{node.lineno}: rationale = {ast.unparse(node.value)}")
    assert offenders == []


def test_the_planner_has_no_words_for_the_approval_gates() -> None:
    """Why a gate holds an action is worded in bot/text/gates.py: planner/ maps no gate category to a sentence (a
    mapping whose keys are `GateCategory` members and whose values hold text of more than three words)."""
    offenders = []
    for where, tree in _planner_trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Dict):
                continue
            gates = [k for k in node.keys if isinstance(k, ast.Attribute) and ast.unparse(k.value) == "GateCategory"]
            sentences = [
                n.value
                for value in node.values
                for n in ast.walk(value)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value.split()) > 3
            ]
            if gates and sentences:
                offenders.append(f"{where}:{node.lineno}: {sentences[0]!r}")
    assert offenders == []


def _not_for_people(tree: ast.AST, error_classes: set[str]) -> set[int]:
    """The ids of the nodes of `tree` that nobody reads as the bot's words: docstrings, what is logged, what is raised
    and the own messages of its errors (for logs), and `__str__` / `__repr__`."""
    outside = [
        node
        for node in ast.walk(tree)
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        or isinstance(node, ast.Raise)
        or (isinstance(node, ast.Call) and ast.unparse(node.func).startswith(("logger.", "logging.")))
        or (isinstance(node, ast.FunctionDef) and node.name in ("__str__", "__repr__"))
    ]
    outside += [
        method
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name in error_classes
        for method in node.body
        if isinstance(method, ast.FunctionDef) and method.name == "__init__"
    ]
    return {id(inner) for node in outside for inner in ast.walk(node)}


def test_the_planner_writes_no_sentence_a_person_reads() -> None:
    """planner/ says what happened as codes and data (enums with their details), and the bot words it in bot/text/:
    no string literal, nor the literal text of an f-string, of three words or more (two, in what a function returns:
    `"is required"`, `f"{ref} approved by {who}"`) is written in planner/ outside its docstrings, its logs and its
    errors' own messages. A label nobody reads (a key's derivation info) is bytes; an id for logs is `kind:value`."""
    error_classes = set(_planner_error_classes())
    found: list[tuple[str, str]] = []
    for where, tree in _planner_trees():
        if "/migrations/" in where:
            continue
        skipped = _not_for_people(tree, error_classes)
        returned = {id(n) for r in ast.walk(tree) if isinstance(r, ast.Return) and r.value for n in ast.walk(r.value)}
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.JoinedStr):
                texts = [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
                words = "".join(texts)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                words = node.value
            else:
                continue
            if len(words.split()) >= (2 if id(node) in returned else 3):
                found.append((where, words))
    assert found == []


@pytest.mark.parametrize(
    ("module", "code"), [("planner.domain.decisions", "BreakCode"), ("planner.domain.decisions", "CheckpointFlaw")]
)
def test_the_planner_passes_each_code_exactly_the_details_it_lists(module: str, code: str) -> None:
    """A call that names a `BreakCode` or `CheckpointFlaw` member (a chain's break, a checkpoint's flaw) passes exactly
    the details the member lists, which the bot's words fill in (bot/text/decisions.py)."""
    members = getattr(importlib.import_module(module), code).__members__
    sites = 0
    offenders: list[str] = []
    for where, tree in _planner_trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            named = [a for a in node.args if isinstance(a, ast.Attribute) and ast.unparse(a.value) == code]
            for member in named:
                sites += 1
                details = {keyword.arg for keyword in node.keywords}
                if member.attr not in members or details != set(members[member.attr].details):
                    offenders.append(f"{where}:{node.lineno}: {code}.{member.attr} given {sorted(map(str, details))}")
    assert sites >= len(members)
    assert offenders == []
