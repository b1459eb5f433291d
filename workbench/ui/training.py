"""The training widget: live loss and accuracy, epoch progress, a Stop button, and the
confusion matrix when training ends. Usable in JupyterLab and Voila.

It observes Keras through a callback and shows what it is told; the training
itself is :func:`workbench.train.fit.train`::

    monitor = TrainingMonitor(classes=data.classes, epochs=40)
    display(monitor)
    result = train(model, data, config, callbacks=[monitor.callback()])
    monitor.show_result(result.record)      # the confusion matrix of the test split

Stop asks Keras to stop after the current batch (``model.stop_training``); early
stopping still restores the best weights. Curves are a plotly figure redrawn in an
Output widget once per epoch: its outputs are widget state, so they show in Voila
(which renders after the notebook ran) as well as live in JupyterLab. A
FigureWidget's incremental updates are messages, lost when no view exists yet.

The figures are put in the Output widgets by :func:`workbench.ui.figures.show_figure`,
never by capturing output: see that module for why (a capture can hang Voila).
"""

from __future__ import annotations

import ipywidgets as w

from .figures import show_figure


class TrainingMonitor(w.VBox):
    """Progress, curves and a Stop button for one training run."""

    def __init__(self, classes: list[str] | None = None, epochs: int = 1,
                 title: str = "training") -> None:

        self.classes = list(classes or [])
        self.stop_requested = False
        self.progress = w.IntProgress(value=0, min=0, max=max(1, epochs), description="Epoch",
                                      bar_style="info")
        self.status = w.HTML(f"<b>{title}</b>: waiting for the first epoch")
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="warning")
        self.stop_button.on_click(lambda _: self.request_stop())
        self.curves = w.Output()
        self.confusion = w.Output()
        self.history: dict[str, list[float]] = {}
        self.title = title
        self.figure = self._curves_figure()
        """The curves as last drawn (a plotly Figure)."""
        super().__init__([w.HBox([self.progress, self.stop_button]), self.status, self.curves,
                          self.confusion])

    def _curves_figure(self):
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
        for col, key in ((1, "loss"), (2, "accuracy")):
            for prefix, dash in (("", "solid"), ("val_", "dot")):
                values = self.history.get(prefix + key, [])
                fig.add_trace(go.Scatter(x=list(range(1, len(values) + 1)), y=values,
                                         name=prefix + key, mode="lines+markers",
                                         line={"dash": dash}), row=1, col=col)
        fig.update_layout(height=300, margin={"l": 40, "r": 10, "t": 30, "b": 30})
        fig.update_xaxes(title_text="epoch")
        return fig

    # ------------------------------------------------------------ driven by Keras
    def request_stop(self) -> None:
        """What the Stop button does: the next batch end stops training."""
        self.stop_requested = True
        self.stop_button.disabled = True
        self.status.value = f"<b>{self.title}</b>: stopping after this batch"

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.figure = self._curves_figure()
        show_figure(self.curves, self.figure)
        self.progress.value = min(self.progress.max, epoch + 1)
        parts = [f"{k} {v:.3f}" for k, v in (logs or {}).items()]
        self.status.value = f"<b>{self.title}</b>: epoch {epoch + 1}: " + ", ".join(parts)

    def callback(self):
        """A Keras callback that feeds this widget and honours its Stop button."""
        from ..train.tf_runtime import keras

        monitor = self

        class _Callback(keras().callbacks.Callback):
            def on_train_begin(self, logs=None):
                monitor.stop_requested = False
                monitor.stop_button.disabled = False

            def on_train_batch_end(self, batch, logs=None):
                if monitor.stop_requested:
                    self.model.stop_training = True

            def on_epoch_end(self, epoch, logs=None):
                monitor.on_epoch_end(epoch, logs or {})
                if monitor.stop_requested:
                    self.model.stop_training = True

            def on_train_end(self, logs=None):
                monitor.stop_button.disabled = True
                monitor.progress.bar_style = "success"

        return _Callback()

    def show_result(self, record, split: str = "test") -> None:
        """Show the confusion matrix (and accuracy) of ``split`` from a TrainingRecord."""
        import plotly.graph_objects as go

        metrics = record.metrics.get(split) or {}
        cm = metrics.get("confusion")
        if not cm:
            self.confusion.outputs = ()
            return
        fig = go.Figure(go.Heatmap(z=cm, x=record.classes, y=record.classes, colorscale="Blues",
                                   text=cm, texttemplate="%{text}", showscale=False))
        fig.update_layout(title=f"{split}: accuracy {metrics['accuracy']:.1%} "
                                f"({metrics['errors']} wrong of {metrics['n']})",
                          xaxis_title="predicted", yaxis_title="true", height=320,
                          yaxis_autorange="reversed",
                          margin={"l": 60, "r": 10, "t": 40, "b": 40})
        show_figure(self.confusion, fig)
        self.status.value = (f"<b>{self.title}</b>: done after {record.epochs_run} epochs"
                             f"{' (stopped early)' if record.stopped_early else ''}, "
                             f"{split} accuracy {metrics['accuracy']:.1%}")
