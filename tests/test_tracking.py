"""The MLflow side, on a real sqlite store: experiments open in the UI's training view."""
from mlflow.tracking import MlflowClient

from pipelines.tracking import EXPERIMENT_KIND, get_experiment_id


def test_the_experiment_is_tagged_as_model_training_new_or_old(tmp_path):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    made = get_experiment_id(client, "smallbig", str(tmp_path))
    assert client.get_experiment(made).tags[EXPERIMENT_KIND[0]] == "custom_model_development"
    older = client.create_experiment("from-an-earlier-version")  # no kind tag yet
    assert get_experiment_id(client, "from-an-earlier-version", str(tmp_path)) == older
    assert client.get_experiment(older).tags[EXPERIMENT_KIND[0]] == "custom_model_development"


def test_the_ui_links_to_the_experiments_training_runs_once_there_are_some(tmp_path):
    from pipelines.cli.tools import training_runs_page

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert training_runs_page(uri) is None  # nothing tracked yet: the plain address only
    experiment_id = get_experiment_id(MlflowClient(tracking_uri=uri), "smallbig", str(tmp_path))
    assert training_runs_page(uri) == f"#/experiments/{experiment_id}/runs"
