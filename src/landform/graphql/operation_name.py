"""A document holding several operations runs the one ``operationName``
names; without a name, none of them runs.

Strawberry takes the first operation when no name is given, where the
GraphQL spec (6.1, GetOperation) asks for an error: a client that forgot
the name would otherwise have a different operation run — a mutation
among them."""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from graphql import GraphQLError, OperationDefinitionNode


class OperationNameRequired(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        named = execution._provided_operation_name  # what the request said, not a guess
        if document is not None and named is None:
            operations = [
                definition
                for definition in document.definitions
                if isinstance(definition, OperationDefinitionNode)
            ]
            if len(operations) > 1:
                names = ", ".join(op.name.value for op in operations if op.name)
                raise GraphQLError(
                    f"the document holds {len(operations)} operations ({names}): "
                    "name the one to run in `operationName`",
                    extensions={"code": "graphql_validation_failed"},
                )
        yield
