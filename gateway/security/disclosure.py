"""The disclosure policy: what each recipient may see of a document, for a purpose.

Strategy §3.2 reduces stigma by limiting who sees criminal-record information, and
every recipient sees only what its purpose needs. The policy (``config/policy.toml``)
lists, for each (recipient role, purpose) and canonical document type, the field paths
that may leave the gateway. Anything else is withheld, and a (role, purpose, document)
without a rule is refused outright: default deny.

``DisclosurePolicy.apply`` works on the JSON-mode dump of a canonical model and runs a
chain of small processors, each a function of a ``Draft`` returning the next one, in the
shape of structlog's processor pipeline:

1. ``withhold_expunged_convictions`` — expunged convictions never leave, for anyone
   (Criminal Code art. 79);
2. ``keep_model_fields`` — only fields of the document's canonical model: a key a codec
   added by mistake is not disclosed because a pattern happens to cover where it sits;
3. ``grant_legal_basis`` — a rule may allow more fields when the request cites one of
   the legal bases it names (medical secrecy lifted for a court);
4. ``keep_allowed_fields`` — the allow-list filter, at any depth;
5. ``refuse_leaks`` — belt and braces: if anything outside the model or the allow-list
   survived the steps before, the document is stopped, not sent.

Field paths are dotted (``sections.identity.iin``); ``[]`` stands for every item of a
list (``sections.criminal_history[].court``). In patterns ``*`` is one key and ``**`` any
number of keys and list levels, including none: ``residence.**`` is the whole residence.
A value is disclosed when its path matches a pattern; an empty value (null, ``[]``,
``{}``) also when a pattern reaches below it, since its absence is all it shows.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pydantic import BaseModel

from gateway.domain import (
    AssistanceReferral,
    ContinuityOfCareNotice,
    EmploymentNotice,
    PlanNotice,
    ProbationNotice,
    PreTrialReport,
    ReleaseNotice,
)
from gateway.errors import Forbidden, GatewayError, Unprocessable



class LegalBasisSettings(Protocol):
    """A rule's escalation as configured (``gateway.config.LegalBasisEscalation``)."""

    @property
    def legal_bases(self) -> Sequence[str]: ...
    @property
    def allow(self) -> Sequence[str]: ...


class DisclosureRule(Protocol):
    """One rule as configured (``gateway.config.DisclosureRule``): the policy reads only these."""

    @property
    def allow(self) -> Sequence[str]: ...
    @property
    def with_legal_basis(self) -> LegalBasisSettings | None: ...

__all__ = [
    "DOCUMENT_TYPES",
    "Disclosure",
    "DisclosureDenied",
    "DisclosureExceeded",
    "DisclosureLeak",
    "DisclosurePolicy",
    "Draft",
    "Rule",
    "grant_legal_basis",
    "holds_list",
    "keep_allowed_fields",
    "keep_model_fields",
    "policy_problems",
    "refuse_leaks",
    "withhold_expunged_convictions",
]

DOCUMENT_TYPES: Mapping[str, type[BaseModel]] = {
    model.__name__: model
    for model in (PreTrialReport, ReleaseNotice, ContinuityOfCareNotice, EmploymentNotice, AssistanceReferral,
                  ProbationNotice, PlanNotice)
}
"""The canonical documents that leave the gateway, by the type name a rule is written for."""


class DisclosureDenied(Forbidden):
    """No rule lets this document go to this recipient for this purpose (default deny)."""

    slug, title = "disclosure-denied", "The disclosure policy does not allow this"


class DisclosureExceeded(Unprocessable):
    """A document handed to the gateway to pass on carries fields its recipient may not see.

    Raised at acceptance, before anything is stored: the sender learns which fields to
    remove (``fields``: their paths, never their values) and sends the document again.
    """

    slug, title = "disclosure-exceeded", "The document carries fields its recipient may not receive"

    def __init__(self, detail: str, fields: Sequence[str]) -> None:
        super().__init__(detail, fields=list(fields))
        self.fields = tuple(fields)


class DisclosureLeak(GatewayError):
    """A field outside the allow-list survived filtering: a defect, so nothing is sent."""

    slug, title = "disclosure-leak", "The disclosure policy stopped a document"


# ---------------------------------------------------------------- paths and patterns

_LIST_ITEM = "[]"
_ONE_KEY = "*"
_ANY_DEPTH = "**"
# A key the model's schema leaves open (a mapping's keys): it matches * and any named key.
_ANY_KEY = "{key}"
_SEGMENT = re.compile(r"^(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*|\*)(?P<list>\[\])?|\*\*)$")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

FieldPath = tuple[str, ...]
"""A field path as tokens: keys, and ``[]`` for a list item."""


def _parse_pattern(text: str) -> FieldPath:
    """``"sections.criminal_history[].court"`` -> ``("sections", "criminal_history", "[]", "court")``."""
    tokens: list[str] = []
    for segment in text.split("."):
        found = _SEGMENT.match(segment)
        if found is None:
            raise ValueError(
                f"{text!r}: segment {segment!r} is not a field name, * or ** "
                "(a field name or * may end in [] for the items of a list)"
            )
        if segment == _ANY_DEPTH:
            tokens.append(_ANY_DEPTH)
        else:
            tokens.append(found["name"])
            if found["list"]:
                tokens.append(_LIST_ITEM)
    return tuple(tokens)


def _render(path: FieldPath) -> str:
    text = ""
    for token in path:
        text += token if token == _LIST_ITEM or not text else f".{token}"
    return text


def _advance(pattern: FieldPath, states: frozenset[int], token: str) -> frozenset[int]:
    """The positions in ``pattern`` reachable after one more path token (an NFA step)."""
    reached: set[int] = set()
    for position in states:
        if position == len(pattern):
            continue
        wanted = pattern[position]
        if wanted == _ANY_DEPTH:
            reached.add(position)
        elif wanted == token or (token != _LIST_ITEM and (wanted == _ONE_KEY or token == _ANY_KEY)):
            reached.add(position + 1)
    return _skip_empty_depth(pattern, reached)


def _skip_empty_depth(pattern: FieldPath, states: set[int] | frozenset[int]) -> frozenset[int]:
    # ** may stand for no tokens at all, so a state before it is also a state after it.
    closed = set(states)
    for position in sorted(states):
        while position < len(pattern) and pattern[position] == _ANY_DEPTH:
            position += 1
            closed.add(position)
    return frozenset(closed)


@dataclass(frozen=True, slots=True, eq=False)
class _Cursor:
    """Where each pattern of an allow-list stands after following a path from the root.

    A document's paths repeat (every item of a list, every document of a type), so each cursor
    keeps the cursors its tokens lead to: the NFA steps once per distinct path, not once per
    value. At most ``_STEPS_KEPT`` per cursor, so keys a sender invents cannot grow it.
    """

    patterns: tuple[FieldPath, ...]
    states: tuple[frozenset[int], ...]
    matched: bool
    """Some pattern matches the path followed so far."""
    alive: bool
    """Some pattern matches this path or a path below it."""
    _next: dict[str, _Cursor]

    @classmethod
    def at_root(cls, patterns: Sequence[FieldPath]) -> _Cursor:
        return _root_cursor(tuple(patterns))

    @classmethod
    def of(cls, patterns: tuple[FieldPath, ...], states: tuple[frozenset[int], ...]) -> _Cursor:
        matched = any(len(p) in s for p, s in zip(patterns, states, strict=True))
        return cls(patterns, states, matched, any(states), {})

    def step(self, token: str) -> _Cursor:
        following = self._next.get(token)
        if following is None:
            following = _Cursor.of(
                self.patterns, tuple(_advance(p, s, token) for p, s in zip(self.patterns, self.states, strict=True))
            )
            if len(self._next) < _STEPS_KEPT:
                self._next[token] = following
        return following


_STEPS_KEPT = 256


@functools.lru_cache(maxsize=1024)
def _root_cursor(patterns: tuple[FieldPath, ...]) -> _Cursor:
    # One per allow-list (a rule's, or a rule's widened by a legal basis): the policy's rules are few.
    return _Cursor.of(patterns, tuple(_skip_empty_depth(p, {0}) for p in patterns))


def _is_field_name(key: Any) -> bool:
    return isinstance(key, str) and _FIELD_NAME.fullmatch(key) is not None


def _is_empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def _leaves(value: Any, path: FieldPath) -> Iterator[FieldPath]:
    """The paths of the values a document carries: scalars, nulls and empty containers."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))
    elif isinstance(value, list) and value:
        for item in value:
            yield from _leaves(item, (*path, _LIST_ITEM))
    else:
        yield path


def _paths(value: Any) -> frozenset[str]:
    return frozenset(_render(path) for path in _leaves(value, ()))


# ---------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class Rule:
    """What one (recipient role, purpose) may see of one document type."""

    allow: tuple[FieldPath, ...]
    legal_bases: frozenset[str] = frozenset()
    allow_with_legal_basis: tuple[FieldPath, ...] = ()

    @classmethod
    def of(cls, config: DisclosureRule) -> Rule:
        escalation = config.with_legal_basis
        return cls(
            allow=tuple(_parse_pattern(p) for p in config.allow),
            legal_bases=frozenset(_basis_key(b) for b in escalation.legal_bases) if escalation else frozenset(),
            allow_with_legal_basis=tuple(_parse_pattern(p) for p in escalation.allow) if escalation else (),
        )


def _basis_key(legal_basis: str) -> str:
    # "CPC  art. 73" and "cpc art. 73" cite the same provision; anything else is a different one.
    return " ".join(legal_basis.split()).casefold()


# ---------------------------------------------------------------- the processors


@dataclass(frozen=True, slots=True)
class Draft:
    """A document on its way through the processors.

    ``allowed`` starts as the rule's allow-list and may grow by a legal basis;
    ``withheld`` collects the paths of what was taken out.
    """

    document_type: str
    payload: Mapping[str, Any]
    rule: Rule
    legal_basis: str | None
    allowed: tuple[FieldPath, ...]
    withheld: frozenset[str] = frozenset()


Processor = Callable[[Draft], Draft]


def withhold_expunged_convictions(draft: Draft) -> Draft:
    """Remove every object marked ``"expunged": true``, wherever it is.

    An expunged conviction has no legal consequences (Criminal Code art. 79) and never
    leaves the gateway, whoever asks and whatever the allow-list says.
    """
    removed: set[str] = set()

    def prune(value: Any, path: FieldPath) -> Any:
        if isinstance(value, dict):
            kept = {}
            for key, item in value.items():
                if _expunged(item):
                    removed.update(_render(p) for p in _leaves(item, (*path, key)))
                else:
                    kept[key] = prune(item, (*path, key))
            return kept
        if isinstance(value, list):
            kept_items = []
            for item in value:
                if _expunged(item):
                    removed.update(_render(p) for p in _leaves(item, (*path, _LIST_ITEM)))
                else:
                    kept_items.append(prune(item, (*path, _LIST_ITEM)))
            return kept_items
        return value

    payload = prune(draft.payload, ())
    return replace(draft, payload=payload, withheld=draft.withheld | removed)


def _expunged(value: Any) -> bool:
    return isinstance(value, dict) and value.get("expunged") is True


def grant_legal_basis(draft: Draft) -> Draft:
    """Add the rule's extra fields when the request cites one of the legal bases it names.

    Diagnoses and treatment are under medical secrecy (врачебная тайна); a court sees
    them only when it cites a provision that lifts the secrecy for its case.
    """
    rule = draft.rule
    if draft.legal_basis is None or _basis_key(draft.legal_basis) not in rule.legal_bases:
        return draft
    return replace(draft, allowed=draft.allowed + rule.allow_with_legal_basis)


def keep_model_fields(draft: Draft) -> Draft:
    """Remove whatever is not a field of the document's canonical model.

    A pattern such as ``residence.**`` means the fields of the residence, not whatever a
    codec defect or a hand-built payload put under it.
    """
    payload, removed = _filter(draft.payload, _FieldCursor.at_root(DOCUMENT_TYPES[draft.document_type]))
    return replace(draft, payload=payload, withheld=draft.withheld | removed)


def keep_allowed_fields(draft: Draft) -> Draft:
    """Keep what the allow-list names, at any depth and in every item of every list."""
    payload, removed = _filter(draft.payload, _Cursor.at_root(draft.allowed))
    return replace(draft, payload=payload, withheld=draft.withheld | removed)


def refuse_leaks(draft: Draft) -> Draft:
    """Raise ``DisclosureLeak`` if anything outside the model or the allow-list, or anything
    expunged, is left.

    The steps before should make this impossible; checking again costs little, and a
    defect in them must stop the document rather than disclose it.
    """
    cursors = (_FieldCursor.at_root(DOCUMENT_TYPES[draft.document_type]), _Cursor.at_root(draft.allowed))
    for path, value, positions in _walk(draft.payload, (), cursors):
        if _expunged(value):
            raise DisclosureLeak(
                f"{draft.document_type}: an expunged conviction survived filtering; the document was not sent"
            )
        leaf = _is_empty(value) or not isinstance(value, (dict, list))
        if leaf and not all(_may_keep(value, position) for position in positions):
            raise DisclosureLeak(
                f"{draft.document_type}: {_render(path)} survived filtering although no rule allows it; "
                "the document was not sent"
            )
    return draft


class _Position(Protocol):
    """Where a path stands against what may be kept: an allow-list, or a model's fields."""

    @property
    def matched(self) -> bool: ...

    @property
    def alive(self) -> bool: ...

    def step(self, token: str) -> _Position: ...


@dataclass(frozen=True, slots=True)
class _FieldCursor:
    """Where a path stands in the tree of a model's fields; ``node`` None when off the model."""

    node: Mapping[Any, Any] | None

    @classmethod
    def at_root(cls, model: type[BaseModel]) -> _FieldCursor:
        return cls(_field_tree(model))

    def step(self, token: str) -> _FieldCursor:
        if self.node is None:
            return self
        child = self.node.get(token)
        if child is None and token != _LIST_ITEM:
            child = self.node.get(_ANY_KEY)
        return _FieldCursor(child)

    @property
    def matched(self) -> bool:
        return self.node is not None and _FIELD_END in self.node

    @property
    def alive(self) -> bool:
        return self.node is not None


_FIELD_END = None  # marks, in the field tree, that a field ends here


def holds_list(document_type: str, path: Sequence[str]) -> bool:
    """Whether the field at ``path`` (keys from the root) of the document type is a list: how a
    document written without JSON's brackets (XML) is read into the JSON form the rules name."""
    cursor = _FieldCursor.at_root(DOCUMENT_TYPES[document_type])
    for key in path:
        cursor = cursor.step(key)
    return cursor.node is not None and _LIST_ITEM in cursor.node


@functools.cache
def _field_tree(model: type[BaseModel]) -> Mapping[Any, Any]:
    tree: dict[Any, Any] = {}
    for path in _model_fields(model):
        node = tree
        for token in path:
            node = node.setdefault(token, {})
        node[_FIELD_END] = {}
    return tree


def _may_keep(value: Any, position: _Position) -> bool:
    # An empty value shows only that there is nothing, so it may stand where fields below
    # it are allowed; anything else must be allowed itself.
    return position.matched or (_is_empty(value) and position.alive)


def _filter(value: Any, root: _Position) -> tuple[Any, frozenset[str]]:
    """``value`` with only what ``root`` allows, and the paths of what was removed."""
    removed: set[str] = set()
    missing = object()

    def keep(value: Any, path: FieldPath, position: _Position) -> Any:
        if isinstance(value, dict) and value and position.alive:
            kept = {}
            for key, item in value.items():
                if not _is_field_name(key):
                    # Not a field name, so no pattern and no model can have allowed it.
                    removed.update(_render(p) for p in _leaves(item, (*path, str(key))))
                    continue
                result = keep(item, (*path, key), position.step(key))
                if result is not missing:
                    kept[key] = result
            return kept
        if isinstance(value, list) and value and position.alive:
            item_position = position.step(_LIST_ITEM)
            kept_items = [keep(item, (*path, _LIST_ITEM), item_position) for item in value]
            return [item for item in kept_items if item is not missing]
        if _is_empty(value) or not isinstance(value, (dict, list)):
            if _may_keep(value, position):
                return value
        removed.update(_render(p) for p in _leaves(value, path))
        return missing

    return keep(value, (), root), frozenset(removed)


def _walk(
    value: Any, path: FieldPath, positions: tuple[_Position, ...]
) -> Iterator[tuple[FieldPath, Any, tuple[_Position, ...]]]:
    """Every value of a document with its path and where each position stands there."""
    yield path, value, positions
    if isinstance(value, dict):
        for key, item in value.items():
            if _is_field_name(key):
                yield from _walk(item, (*path, key), tuple(p.step(key) for p in positions))
            else:
                yield from _walk(item, (*path, str(key)), tuple(_Cursor.at_root(()) for _ in positions))
    elif isinstance(value, list):
        steps = tuple(p.step(_LIST_ITEM) for p in positions)
        for item in value:
            yield from _walk(item, (*path, _LIST_ITEM), steps)


_CHAIN: tuple[Processor, ...] = (
    withhold_expunged_convictions,
    keep_model_fields,
    grant_legal_basis,
    keep_allowed_fields,
    refuse_leaks,
)


# ---------------------------------------------------------------- the policy


@dataclass(frozen=True, slots=True)
class Disclosure:
    """What may leave: the filtered payload, and the paths disclosed and withheld (for the audit log)."""

    payload: dict[str, Any]
    disclosed: tuple[str, ...]
    withheld: tuple[str, ...]


class DisclosurePolicy:
    """The validated ``[policy]`` of the configuration, ready to apply."""

    def __init__(self, rules: Mapping[str, Mapping[str, Mapping[str, DisclosureRule]]]) -> None:
        problems = policy_problems(rules)
        if problems:
            raise ValueError("; ".join(f"{'.'.join(map(str, loc))}: {message}" for loc, message in problems))
        self._rules = {
            (role, purpose, document_type): Rule.of(rule)
            for role, purposes in rules.items()
            for purpose, documents in purposes.items()
            for document_type, rule in documents.items()
        }

    def accepts_legal_basis(self, *, recipient_role: str, purpose: str, document_type: str,
                            legal_basis: str | None) -> bool:
        """Whether ``legal_basis`` widens what this recipient may see: a sender that would
        build a fuller document for it asks first, instead of having fields stripped."""
        rule = self._rules.get((recipient_role, purpose, document_type))
        return rule is not None and legal_basis is not None and _basis_key(legal_basis) in rule.legal_bases

    def apply(
        self,
        *,
        document_type: str,
        payload: Mapping[str, Any],
        recipient_role: str,
        purpose: str,
        legal_basis: str | None = None,
    ) -> Disclosure:
        """Filter ``payload`` (a ``model_dump(mode="json")``) for the recipient and purpose.

        Raises ``DisclosureDenied`` when no rule covers (role, purpose, document type),
        ``DisclosureLeak`` when filtering failed to remove something.
        """
        rule = self._rules.get((recipient_role, purpose, document_type))
        if rule is None:
            raise DisclosureDenied(
                f"no rule lets a {document_type} go to a {recipient_role} for {purpose}; "
                "the disclosure policy denies what it does not allow"
            )
        draft = Draft(document_type, payload, rule, legal_basis, allowed=rule.allow)
        for processor in _CHAIN:
            draft = processor(draft)
        disclosed = _paths(draft.payload)
        return Disclosure(
            payload=dict(draft.payload),
            disclosed=tuple(sorted(disclosed)),
            withheld=tuple(sorted(draft.withheld)),
        )

    def admit(
        self, *, document_type: str, payload: Mapping[str, Any], recipient_role: str, purpose: str
    ) -> Disclosure:
        """Check a document another member sends through the gateway, whole, as it will leave.

        What the gateway builds itself it filters (``apply``); what a member hands it to pass on
        it does not edit: it is accepted only when the policy would withhold nothing from it.
        Raises ``DisclosureDenied`` when no rule covers (role, purpose, document type) and
        ``DisclosureExceeded``, naming the fields, when the rule does not allow all of it.
        """
        disclosure = self.apply(document_type=document_type, payload=payload,
                                recipient_role=recipient_role, purpose=purpose)
        if disclosure.withheld:
            # Paths only, never values; a key that is no field name could be anything (an IIN),
            # so it is not repeated back.
            paths = {_safe_path(path) for path in disclosure.withheld}
            # "convictions" emptied by its items' removal is named by them.
            fields = sorted(p for p in paths if not any(q.startswith((p + ".", p + "[]")) for q in paths))
            shown = ", ".join(fields[:_FIELDS_NAMED])
            more = f" and {len(fields) - _FIELDS_NAMED} more" if len(fields) > _FIELDS_NAMED else ""
            raise DisclosureExceeded(
                f"{document_type} to {recipient_role} for {purpose}: the disclosure policy does not allow "
                f"{shown}{more}; remove them and send the document again "
                "(expunged convictions are never passed on, for anyone)",
                fields[:_FIELDS_NAMED],
            )
        return disclosure


_FIELDS_NAMED = 50


def _safe_path(path: str) -> str:
    return ".".join(
        part if _SEGMENT.match(part.removesuffix("[]")) or part == "[]" else "<not a field name>"
        for part in path.split(".")
    )


# ---------------------------------------------------------------- validation


def policy_problems(
    rules: Mapping[str, Mapping[str, Mapping[str, DisclosureRule]]],
) -> list[tuple[tuple[str | int, ...], str]]:
    """Every problem of a policy as (key path, message): unknown document types, bad patterns,
    patterns that name no field of the document's model."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for role, purposes in rules.items():
        for purpose, documents in purposes.items():
            for document_type, rule in documents.items():
                where = (role, purpose, document_type)
                model = DOCUMENT_TYPES.get(document_type)
                if model is None:
                    problems.append(
                        (where, f"unknown document type (known: {', '.join(sorted(DOCUMENT_TYPES))})")
                    )
                    continue
                patterns = [(("allow", index), text) for index, text in enumerate(rule.allow)]
                if rule.with_legal_basis is not None:
                    patterns += [
                        (("with_legal_basis", "allow", index), text)
                        for index, text in enumerate(rule.with_legal_basis.allow)
                    ]
                for key, text in patterns:
                    problem = _pattern_problem(text, model)
                    if problem:
                        problems.append(((*where, *key), problem))
    return problems


def _pattern_problem(text: str, model: type[BaseModel]) -> str | None:
    try:
        pattern = _parse_pattern(text)
    except ValueError as exc:
        return str(exc)
    ends = [_ends(pattern, field) for field in _model_fields(model)]
    if any(len(field) in at for field, at in zip(_model_fields(model), ends, strict=True)):
        return None
    if any(ends):
        return (
            f"{text!r} names a part of {model.__name__} that holds other fields or list items: "
            f"name them, or write {text}.** for all of it"
        )
    return f"{text!r} matches no field of {model.__name__}"


def _ends(pattern: FieldPath, field: FieldPath) -> set[int]:
    """After how many tokens of ``field`` the pattern has matched it so far (0..len(field))."""
    states = _skip_empty_depth(pattern, {0})
    ends = {0} if len(pattern) in states else set()
    for count, token in enumerate(field, start=1):
        states = _advance(pattern, states, token)
        if len(pattern) in states:
            ends.add(count)
    return ends


@functools.cache
def _model_fields(model: type[BaseModel]) -> tuple[FieldPath, ...]:
    """Every leaf path of the model's JSON-mode dump, from its JSON Schema."""
    schema = model.model_json_schema(mode="serialization")
    definitions = schema.get("$defs", {})
    return tuple(sorted(set(_schema_leaves(schema, (), definitions, ()))))


def _schema_leaves(
    node: Mapping[str, Any], path: FieldPath, definitions: Mapping[str, Any], seen: tuple[str, ...]
) -> Iterator[FieldPath]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            raise ValueError(f"the model refers to {name} inside itself; paths would be endless")
        yield from _schema_leaves(definitions[name], path, definitions, (*seen, name))
        return
    # An object with properties is that object, whatever constraints its anyOf adds (an
    # address says where by one of three fields); only a schema without them is a union.
    branches = None if "properties" in node else node.get("anyOf") or node.get("oneOf") or node.get("allOf")
    if branches:
        # An optional object is not a field of its own: a pattern must name what is inside.
        values = [branch for branch in branches if branch.get("type") != "null"] or branches
        for branch in values:
            yield from _schema_leaves(branch, path, definitions, seen)
        return
    kind = node.get("type")
    if kind == "object" and "properties" in node:
        for key, child in node["properties"].items():
            yield from _schema_leaves(child, (*path, key), definitions, seen)
    elif kind == "object" and isinstance(node.get("additionalProperties"), dict):
        for key in _property_names(node, definitions):
            yield from _schema_leaves(node["additionalProperties"], (*path, key), definitions, seen)
    elif kind == "array" and isinstance(node.get("items"), dict):
        yield from _schema_leaves(node["items"], (*path, _LIST_ITEM), definitions, seen)
    else:
        yield path


def _property_names(node: Mapping[str, Any], definitions: Mapping[str, Any]) -> tuple[str, ...]:
    names = node.get("propertyNames", {})
    if "$ref" in names:
        names = definitions[names["$ref"].rsplit("/", 1)[-1]]
    return tuple(names["enum"]) if "enum" in names else (_ANY_KEY,)
