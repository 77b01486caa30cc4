"""The GraphQL API: the whole platform as one graph (an Apollo Federation 2
subgraph) over the same services the REST API uses. ``view.GraphQLView`` is
mounted at ``/graphql``; ``schema.build_schema`` builds the schema."""
