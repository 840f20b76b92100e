"""Stop keeps the last completed epoch; one training run at a time; the public-demo switch."""

from __future__ import annotations

import dataclasses

import torch
from streamlit.runtime.scriptrunner_utils.exceptions import StopException
from streamlit.testing.v1 import AppTest

import ui.training
from vae_core import train as real_train


def click_train(at: AppTest, epochs: int = 3) -> AppTest:
    at.selectbox(key="train_dataset").set_value("digits")
    at.number_input(key="train_epochs").set_value(epochs)
    at.number_input(key="train_hidden").set_value(32)
    at.button[0].click()  # the form's Train button
    return at.run()


def test_stop_mid_epoch_installs_the_last_completed_epoch(monkeypatch, open_train_page) -> None:
    kept = {}

    def one_epoch_then_stop(model, train_set, test_set, config, on_step=None, on_epoch_end=None, should_stop=None):
        real_train(model, train_set, test_set, dataclasses.replace(config, epochs=1), on_step, on_epoch_end)
        kept.update({k: v.clone() for k, v in model.state_dict().items()})
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.5)  # half of epoch 2 happened
        raise StopException()  # what Streamlit raises at the next st.* call after a click on Stop

    monkeypatch.setattr(ui.training, "train", one_epoch_then_stop)
    at = click_train(open_train_page())
    assert not at.exception
    (entry,) = at.session_state["user_models"].values()
    assert kept and all(torch.equal(entry.model.state_dict()[k], v) for k, v in kept.items())
    assert len(entry.meta["history"]) == 1
    # The latent space per epoch ends with the epoch whose weights were kept, not the half-done one.
    assert entry.timeline["epochs"] == [0, 1]
    from vae_core import load_dataset
    from vae_core.subset import subset_indices

    test = load_dataset("digits", "test")
    images = test.as_float()[torch.as_tensor(subset_indices(len(test), ui.training.TIMELINE_POINTS))]
    with torch.no_grad():
        mu, _ = entry.model.encode(images)
    assert torch.allclose(torch.from_numpy(entry.timeline["coords"][-1]), mu, atol=1e-5)
    at.run()  # the next run picks the new model and shows what happened
    assert at.selectbox(key="model").value == entry.id
    assert "Stopped after epoch 1 of 3" in at.success[0].value


def test_stop_during_the_first_epoch_installs_nothing(monkeypatch, open_train_page) -> None:
    def stop_at_once(model, train_set, test_set, config, on_step=None, on_epoch_end=None, should_stop=None):
        with torch.no_grad():
            next(model.parameters()).add_(1.0)
        raise StopException()

    monkeypatch.setattr(ui.training, "train", stop_at_once)
    at = open_train_page()
    before = at.selectbox(key="model").value
    click_train(at)
    assert not at.exception
    assert not at.session_state["user_models"]
    at.run()
    assert at.selectbox(key="model").value == before
    assert "before the first epoch finished; nothing was kept" in at.warning[0].value


def test_only_one_training_run_at_a_time(open_train_page) -> None:
    assert ui.training._RUNS.acquire(blocking=False)  # another visitor's run
    try:
        at = click_train(open_train_page(), epochs=1)
    finally:
        ui.training._RUNS.release()
    assert not at.exception
    assert "Another visitor is training" in at.warning[0].value
    assert not at.session_state["user_models"]
    at = click_train(at, epochs=1)  # free again: this run trains
    assert not at.exception and len(at.session_state["user_models"]) == 1


def test_the_public_demo_hides_server_folders_and_idx(monkeypatch, open_train_page) -> None:
    at = open_train_page()
    assert "idx" in at.selectbox(key="train_dataset").options
    assert [t for t in at.text_input if t.key == "train_dir"]
    monkeypatch.setenv(ui.training.PUBLIC_ENV, "1")
    at = open_train_page()
    assert not at.exception
    assert "idx" not in at.selectbox(key="train_dataset").options
    assert not [t for t in at.text_input if t.key == "train_dir"]


def test_the_public_demo_ends_a_long_run_and_keeps_its_completed_epochs(monkeypatch, open_train_page) -> None:
    asked = []

    def one_epoch_then_out_of_time(
        model, train_set, test_set, config, on_step=None, on_epoch_end=None, should_stop=None
    ):
        asked.append(should_stop())
        real_train(model, train_set, test_set, dataclasses.replace(config, epochs=1), on_step, on_epoch_end)
        return None  # train() returns early once should_stop() is true

    monkeypatch.setattr(ui.training, "train", one_epoch_then_out_of_time)
    monkeypatch.setattr(ui.training, "PUBLIC_RUN_S", 0)
    at = click_train(open_train_page())  # not a public demo: no time limit
    assert asked == [False] and not at.exception
    monkeypatch.setenv(ui.training.PUBLIC_ENV, "1")
    at = open_train_page()
    assert "a run stops after 0 minutes" in " ".join(c.value for c in at.caption)
    at = click_train(at)
    assert asked == [False, True] and not at.exception  # the page reran itself to show the new model
    assert "Stopped after epoch 1 of 3 (this public demo trains for at most" in at.success[0].value
    assert len(at.session_state["user_models"]) == 1


def test_a_public_run_out_of_time_in_its_first_epoch_keeps_nothing(monkeypatch, open_train_page) -> None:
    monkeypatch.setattr(ui.training, "PUBLIC_RUN_S", 0)
    monkeypatch.setenv(ui.training.PUBLIC_ENV, "1")
    at = click_train(open_train_page())  # the real train(): should_stop() is true at its first check
    assert not at.exception and not at.session_state["user_models"]  # the page reran itself to say why
    assert "nothing was kept, the current model is unchanged (this public demo" in at.warning[0].value


def test_a_stop_at_an_epochs_end_keeps_the_timeline_of_the_kept_weights(monkeypatch, open_train_page) -> None:
    """A Stop raises at the first st.* call after the epoch's record: the timeline must already hold that
    epoch, since the epoch's weights are the ones kept (the loss chart was drawn before it was added)."""
    import ui.training as training

    drawn = []
    real_chart = training.loss_chart

    def stop_at_second_chart(history):
        drawn.append(len(history))
        if len(drawn) == 2:
            raise StopException()  # what Streamlit raises at an st.* call after a click on Stop
        return real_chart(history)

    monkeypatch.setattr(training, "loss_chart", stop_at_second_chart)
    at = click_train(open_train_page())
    assert not at.exception
    (entry,) = at.session_state["user_models"].values()
    assert len(entry.meta["history"]) == 2 and entry.timeline["epochs"] == [0, 1, 2]
    from vae_core import load_dataset
    from vae_core.subset import subset_indices

    test = load_dataset("digits", "test")
    images = test.as_float()[torch.as_tensor(subset_indices(len(test), training.TIMELINE_POINTS))]
    with torch.no_grad():
        mu, _ = entry.model.encode(images)
    assert torch.allclose(torch.from_numpy(entry.timeline["coords"][-1]), mu, atol=1e-5)


def test_test_images_of_another_size_give_the_trainings_message_not_a_traceback(monkeypatch, open_train_page):
    """The timeline encodes test digits before train() checks their size: it must leave that to train()."""
    import ui.training as training
    from vae_core import Dataset

    real_load = training.load_dataset

    def mismatched(name, split, data_dir=None):
        data = real_load(name, split, data_dir)
        if split == "test":  # 8x8 training images, 4x4 test images
            return Dataset(data.name, data.images[:, ::2, ::2].contiguous(), data.labels, data.class_names, "test")
        return data

    monkeypatch.setattr(training, "load_dataset", mismatched)
    at = click_train(open_train_page())
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any(e.startswith("Training stopped: the model expects (8, 8) images") for e in errors), errors
    assert not at.session_state["user_models"]
