"""Abuse limits, checked before anything runs.

- Depth and aliases are validation rules (cached with the validation of
  each document): depth counts nested selections, aliases count every
  aliased field, fragments included wherever they are spread. Before
  either, the fields the document selects with its fragments spread in are
  counted without spreading them (``expanded_fields``, a count per
  fragment): a fragment that spreads the one before it twice doubles the
  selection with each fragment, and a document of a kilobyte selected
  2^29 fields, which took a worker's event loop for minutes to walk.
- Cost needs the operation's variables, so it is checked just before
  execution: every field that returns an object costs 1, and so does each
  object of a list (an ``_entities`` list selecting only scalars cost
  nothing before, however long); some fields cost more (``FIELD_COSTS``).
  A list field multiplies what it selects by its ``first`` argument — as
  written, from a variable, a variable's default or the argument's own
  default (a connection's own lists then count once) — or by the length of
  ``representations``, or, without either, by ``LIST_SIZE``.
  Introspection fields (``__schema``…) cost nothing.
- Tokens are limited while parsing (graphql-core's ``max_tokens``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from strawberry.extensions import SchemaExtension

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
    get_nullable_type,
    value_from_ast_untyped,
)

LIST_SIZE = 10

# Fields that cost more than the 1 of any object-returning field.
FIELD_COSTS = {
    "Query.pageAnalytics": 10,
    "Query.dashboard": 10,
    "Query.customQuery": 50,
    "LandingPage.analytics": 2,
    "Subscription.liveViews": 10,
    # A page's whole content (blocks and theme): up to a request body each.
    "LandingPage.content": 10,
    "PageVersionDetail.content": 10,
}
MUTATION_COST = 10


def _fragments(document_definitions: Any) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document_definitions if isinstance(d, FragmentDefinitionNode)}


def _fields(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> Iterator[tuple[FieldNode, str | None]]:
    """The fields of a selection set with fragments spread in, each with the
    type condition it sits under (None: the enclosing type)."""
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection, None
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition.name.value if selection.type_condition else None
            for field, inner in _fields(selection.selection_set, fragments, seen):
                yield field, inner or condition
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in seen:  # reported by the standard rules
                continue
            for field, inner in _fields(fragment.selection_set, fragments, seen | {name}):
                yield field, inner or fragment.type_condition.name.value


# Fields one document may select, its fragments spread in: far more than any
# page of this API's answer needs, and few enough to walk at once.
MAX_EXPANDED_FIELDS = 5_000


def expanded_fields(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    counted: dict[str, int] | None = None,
) -> int:
    """How many fields ``selection_set`` selects at every level with its
    fragments spread in, each fragment counted once and its count reused
    (``counted``): linear in the document, however often it spreads them.
    A cycle counts nothing (the standard rules report it)."""
    if selection_set is None:
        return 0
    counted = {} if counted is None else counted
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            total += 1 + expanded_fields(selection.selection_set, fragments, counted)
        elif isinstance(selection, InlineFragmentNode):
            total += expanded_fields(selection.selection_set, fragments, counted)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name not in counted:
                counted[name] = 0  # while it is being counted: a cycle adds nothing
                fragment = fragments.get(name)
                if fragment is not None:
                    counted[name] = expanded_fields(fragment.selection_set, fragments, counted)
            total += counted[name]
    return total


def _depth(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]
) -> int:
    deepest = 0
    for field, _ in _fields(selection_set, fragments):
        if field.name.value.startswith("__"):
            continue
        deepest = max(deepest, 1 + _depth(field.selection_set, fragments))
    return deepest


def _aliases(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]
) -> int:
    return sum(
        (1 if field.alias else 0) + _aliases(field.selection_set, fragments)
        for field, _ in _fields(selection_set, fragments)
    )


def shape_rule(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    """One validation rule for the depth and alias limits."""

    class ShapeLimits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            definitions = context.document.definitions
            fragments = _fragments(definitions)
            operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
            counted: dict[str, int] = {}
            selected = sum(
                expanded_fields(operation.selection_set, fragments, counted)
                for operation in operations
            )
            if selected > MAX_EXPANDED_FIELDS:
                context.report_error(
                    GraphQLError(
                        f"the document selects {selected:,} fields with its fragments "
                        f"spread in; at most {MAX_EXPANDED_FIELDS:,} are allowed",
                        extensions={"code": "query_too_large"},
                    )
                )
                return  # walking it for depth and aliases would take as long
            aliases = sum(_aliases(op.selection_set, fragments) for op in operations)
            if aliases > max_aliases:
                context.report_error(
                    GraphQLError(
                        f"{aliases} aliases; at most {max_aliases} are allowed",
                        extensions={"code": "too_many_aliases"},
                    )
                )
            for operation in operations:
                depth = _depth(operation.selection_set, fragments)
                if depth > max_depth:
                    name = operation.name.value if operation.name else "the operation"
                    context.report_error(
                        GraphQLError(
                            f"{name} is {depth} levels deep; at most {max_depth} are allowed",
                            nodes=[operation],
                            extensions={"code": "query_too_deep"},
                        )
                    )

    return ShapeLimits


def operation_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int:
    root = {
        "query": schema.query_type,
        "mutation": schema.mutation_type,
        "subscription": schema.subscription_type,
    }[operation.operation.value]
    if root is None:
        return 0
    mutation = operation.operation.value == "mutation"
    # A variable left out takes its default, which execution will use too.
    defaults = {
        definition.variable.name.value: value_from_ast_untyped(definition.default_value)
        for definition in operation.variable_definitions or ()
        if definition.default_value is not None
    }
    variables = {**defaults, **variables}
    return _cost(schema, root, operation.selection_set, fragments, variables, mutation)


def _cost(
    schema: GraphQLSchema,
    parent: GraphQLNamedType,
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    top_level_mutation: bool = False,
) -> int:
    total = 0
    for field, condition in _fields(selection_set, fragments):
        name = field.name.value
        if name.startswith("__"):
            continue
        owner = schema.get_type(condition) if condition else parent
        if not isinstance(owner, GraphQLObjectType) or name not in owner.fields:
            continue  # an interface or union member, or an unknown field (validation says)
        definition = owner.fields[name]
        named = get_named_type(definition.type)
        composite = isinstance(named, _COMPOSITE)
        own = FIELD_COSTS.get(f"{owner.name}.{name}")
        if own is None:
            own = MUTATION_COST if top_level_mutation else int(composite)
        inner = _cost(schema, named, field.selection_set, fragments, variables)
        if owner.name.endswith("Connection"):
            # A connection's lists hold the page its field's `first` asked
            # for, already multiplied in.
            total += own + inner
            continue
        listed = isinstance(get_nullable_type(definition.type), GraphQLList)
        each = inner + (1 if listed and composite else 0)
        total += own + _multiplier(field, definition, variables) * each
    return total


_COMPOSITE = (GraphQLObjectType, GraphQLInterfaceType, GraphQLUnionType)
_SIZE_ARGUMENTS = ("first", "representations")
MAX_INT = 2**31 - 1  # GraphQL's Int


def _multiplier(field: FieldNode, definition: GraphQLField, variables: Mapping[str, Any]) -> int:
    """How many entries a field's list holds at most."""
    given = {argument.name.value: argument.value for argument in field.arguments or ()}
    for name in _SIZE_ARGUMENTS:
        if name in given:
            node = given[name]
            value = (
                variables.get(node.name.value)
                if isinstance(node, VariableNode)
                else value_from_ast_untyped(node)
            )
        elif name in definition.args:
            value = definition.args[name].default_value
        else:
            continue
        if isinstance(value, list):
            return max(len(value), 1)
        if isinstance(value, int) and not isinstance(value, bool):
            # Beyond Int's range, execution refuses the value itself and
            # says so; it is not a cost.
            return max(value, 1) if value <= MAX_INT else 1
        if value is not Undefined and value is not None:
            return 1  # the wrong type: execution says so
    return LIST_SIZE if isinstance(get_nullable_type(definition.type), GraphQLList) else 1


def _spend_batch_allowance(context: Any, cost: int, max_cost: int) -> None:
    """A batch's operations share one allowance: ten operations of 15
    aliased custom queries each would otherwise be 150 of them in one
    request, for one request's rate-limit token."""
    spent = getattr(context, "batch_cost", None)
    if spent is None:
        return
    if spent + cost > max_cost:
        raise GraphQLError(
            f"this batch's operations cost {spent + cost} together; at most {max_cost} is "
            "allowed for a whole batch (send the rest in another request)",
            extensions={"code": "query_too_costly", "cost": spent + cost, "max_cost": max_cost},
        )
    context.batch_cost = spent + cost


def cost_extension(max_cost: int) -> type[SchemaExtension]:
    """An extension that refuses an operation costing more than
    ``max_cost``, before it executes."""

    class CostLimit(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            context = self.execution_context
            document = context.graphql_document
            if document is not None and context.result is None:
                fragments = _fragments(document.definitions)
                operations = [
                    d
                    for d in document.definitions
                    if isinstance(d, OperationDefinitionNode)
                    and (
                        context.operation_name is None
                        or d.name
                        and d.name.value == context.operation_name
                    )
                ]
                schema = context.schema._schema
                variables = context.variables or {}
                cost = max(
                    (operation_cost(schema, op, fragments, variables) for op in operations),
                    default=0,
                )
                if cost > max_cost:
                    raise GraphQLError(
                        f"this operation costs {cost}; at most {max_cost} is allowed "
                        "(ask for fewer items or fields)",
                        extensions={"code": "query_too_costly", "cost": cost, "max_cost": max_cost},
                    )
                _spend_batch_allowance(context.context, cost, max_cost)
            yield

    return CostLimit
