"""Vertex AI's price table: a project on `endpoint: vertex` is planned and billed from it, and
its plan says which table priced it."""

from __future__ import annotations

from reconciler.config import ModelPrice, ProjectConfig
from reconciler.plan import default_price_table
from reconciler.plan.cost import project_price_table
from reconciler.plan.planner import plan_now
from tests.unit.plan.factories import T0, desired, live, resource, state


def test_vertex_projects_are_priced_from_the_vertex_table_and_others_from_the_developer_one() -> (
    None
):
    vertex = project_price_table("vertex", {})
    developer = project_price_table("gemini", {})

    assert vertex == default_price_table("vertex") and vertex.label
    assert developer == default_price_table() and not developer.label
    for endpoint in ("emulator", "http://127.0.0.1:8765"):  # the Developer API's protocol
        assert project_price_table(endpoint, {}) == developer
    assert vertex.batch_discount == 0.5
    assert vertex.price_for("gemini-2.5-flash") is not None
    # Vertex batch prediction takes no embedding jobs: nothing to price.
    assert vertex.price_for("gemini-embedding-001") is None


def test_vertex_overrides_keep_the_tables_label() -> None:
    price = ModelPrice(input_per_million=9.0, output_per_million=9.0)
    table = project_price_table("vertex", {"my-tuned-model": price})

    assert table.price_for("my-tuned-model") == price
    assert table.label == default_price_table("vertex").label


def test_a_vertex_plan_names_the_table_that_priced_it() -> None:
    config = ProjectConfig.model_validate({"endpoint": "vertex"})

    made = plan_now(config, desired(resource("a")), state(), live(), now=T0)

    vertex = default_price_table("vertex")
    assert made.summary.price_table_as_of == f"{vertex.as_of} ({vertex.label})"
    gemini = plan_now(ProjectConfig(), desired(resource("a")), state(), live(), now=T0)
    assert gemini.summary.price_table_as_of == default_price_table().as_of
