"""Knowledge distillation: train a small student to match a big teacher (Hinton et al. 2015).

Two ways to set it up, both giving a Keras model with ``fit``/``evaluate``::

    from workbench.train.distill import Distiller

    # one call
    d = Distiller(teacher, student, optimizer="adam", temperature=3, alpha=0.1)
    d.fit(X, y, epochs=20, validation_data=(Xv, yv))
    small = d.student                       # the trained student: save or convert it

    # the Keras "Knowledge Distillation" example's API
    d = Distiller(teacher, student)
    d.compile(optimizer=keras.optimizers.Adam(), metrics=["accuracy"],
              student_loss_fn=keras.losses.SparseCategoricalCrossentropy(),
              distillation_loss_fn=keras.losses.KLDivergence(), alpha=0.1, temperature=3)

The loss is ``alpha * student_loss(y, student(x)) + (1 - alpha) * T**2 *
distillation_loss(softmax(t / T), softmax(s / T))`` where ``t``/``s`` are the
teacher's/student's logits and ``T`` the temperature. Only the student's weights
are updated; the teacher runs in inference mode and is never changed.

Logits or probabilities: models may end in a softmax (the zoo's do) or output
logits. ``teacher_outputs``/``student_outputs`` say which (``"auto"``, the default,
looks for a final ``Softmax`` layer or a softmax activation, through tfmot's QAT
wrappers). Probabilities are turned back into logits as ``log(p)`` (exact up to a
constant, which softmax ignores), so ``softmax(log(p) / T)`` is the correctly
softened distribution; applying the temperature to probabilities would not be.
The student loss gets the student's raw outputs, so its default matches them
(``SparseCategoricalCrossentropy(from_logits=...)``).

The student may be quantization-aware (``quantize_aware(student)`` first): the
trained ``d.student`` then converts to an int8 TFLite model directly.

``Distiller`` subclasses legacy Keras's ``Model``; the class is created on first
access (``from workbench.train.distill import Distiller`` imports TensorFlow,
``import workbench.train.distill`` does not).
"""

from __future__ import annotations

from typing import Any

from .tf_runtime import keras, tf

__all__ = ["Distiller", "outputs_kind"]  # noqa: F822 (Distiller is made on first access)

_EPS = 1e-12
_KINDS = ("auto", "logits", "probabilities")


def _is_softmax(fn: Any) -> bool:
    if fn is None:
        return False
    inner = getattr(fn, "activation", None)  # tfmot's QuantizeAwareActivation
    if inner is not None and inner is not fn:
        return _is_softmax(inner)
    return getattr(fn, "__name__", "") == "softmax"


def outputs_kind(model) -> str:
    """``"probabilities"`` if ``model`` ends in a softmax, else ``"logits"``.

    Looks at the last layer, through tfmot's wrappers (QAT, pruning, clustering):
    a ``Softmax`` layer, an ``Activation("softmax")`` or a layer with
    ``activation="softmax"``.
    """
    k = keras()
    layers = getattr(model, "layers", None)
    if not layers:
        return "logits"
    last = layers[-1]
    while hasattr(last, "layer") and isinstance(last.layer, k.layers.Layer):
        last = last.layer
    if isinstance(last, k.Model):
        return outputs_kind(last)
    if isinstance(last, k.layers.Softmax):
        return "probabilities"
    return "probabilities" if _is_softmax(getattr(last, "activation", None)) else "logits"


def _resolve_kind(model, kind: str, what: str) -> str:
    if kind not in _KINDS:
        raise ValueError(f"{what} must be one of {_KINDS}, got {kind!r}")
    return outputs_kind(model) if kind == "auto" else kind


def _make_class():
    k = keras()
    tf_ = tf()

    def as_logits(pred, kind):
        if kind == "probabilities":
            return tf_.math.log(tf_.maximum(tf_.cast(pred, tf_.float32), _EPS))
        return tf_.cast(pred, tf_.float32)

    def apply_loss(fn, y_true, y_pred, sample_weight):
        if isinstance(fn, k.losses.Loss):
            return fn(y_true, y_pred, sample_weight=sample_weight)
        values = fn(y_true, y_pred)
        if sample_weight is None:
            return tf_.reduce_mean(values)
        sw = tf_.cast(tf_.reshape(sample_weight, tf_.shape(values)), values.dtype)
        return tf_.reduce_sum(values * sw) / tf_.cast(tf_.size(values), values.dtype)

    class Distiller(k.Model):
        """A Keras model that trains ``student`` to imitate ``teacher`` (and the labels).

        Construction: ``Distiller(teacher, student)`` then :meth:`compile` (the
        Keras example's API), or all at once: ``Distiller(teacher, student,
        optimizer, distillation_loss, student_loss, temperature, alpha)`` (any of
        them by keyword; giving ``optimizer`` compiles). Then ``fit``/``evaluate``
        as usual; ``predict``/``__call__`` run the student. ``.student`` is the
        trained student (the same object that was passed in, trained in place).

        Side effects: ``fit`` updates ``student``'s weights in place; ``teacher``
        is never changed (it runs with ``training=False`` and its weights get no
        gradients). Neither model is cloned.

        Args:
            teacher: a trained tf_keras model, logits or softmax output.
            student: a tf_keras model with the same output shape (may be QAT).
            optimizer: if given, compile now with it (a name or an instance).
            distillation_loss: compares softened teacher and student
                distributions; default ``KLDivergence()``.
            student_loss: compares labels with the student's raw outputs;
                default sparse categorical cross-entropy matching them.
            temperature: > 0; softens both distributions. Default 3.
            alpha: in [0, 1]; weight of the student loss (``1 - alpha`` goes to
                distillation). Default 0.1.
            metrics: student metrics when compiling here; default accuracy.
            teacher_outputs, student_outputs: ``"auto"``, ``"logits"`` or
                ``"probabilities"``.

        Raises:
            TypeError: teacher or student is not a tf_keras model.
            ValueError: student is teacher, their output shapes differ, bad
                temperature/alpha/outputs kind.
        """

        def __init__(self, teacher, student, optimizer=None, distillation_loss=None,
                     student_loss=None, temperature: float = 3.0, alpha: float = 0.1, *,
                     metrics=("accuracy",), teacher_outputs: str = "auto",
                     student_outputs: str = "auto", name: str = "distiller", **kwargs):
            for what, m in (("teacher", teacher), ("student", student)):
                if not isinstance(m, k.Model):
                    raise TypeError(
                        f"{what} must be a tf_keras Model, got {type(m).__module__}."
                        f"{type(m).__qualname__} (build models with workbench.train.zoo or "
                        "workbench.train.tf_runtime.keras(); Keras 3 models cannot be distilled "
                        "into quantization-aware students)")
            if student is teacher:
                raise ValueError("student and teacher are the same model")
            t_shape = tuple(teacher.output_shape[1:]) if teacher.built else None
            s_shape = tuple(student.output_shape[1:]) if student.built else None
            if t_shape is not None and s_shape is not None and t_shape != s_shape:
                raise ValueError(f"teacher outputs {t_shape} but student outputs {s_shape}: "
                                 "they must predict the same classes")
            super().__init__(name=name, **kwargs)
            self.teacher = teacher
            self.student = student
            self.teacher_outputs = _resolve_kind(teacher, teacher_outputs, "teacher_outputs")
            self.student_outputs = _resolve_kind(student, student_outputs, "student_outputs")
            self._loss_tracker = k.metrics.Mean(name="loss")
            self._student_tracker = k.metrics.Mean(name="student_loss")
            self._distill_tracker = k.metrics.Mean(name="distillation_loss")
            self._configured = False
            _check_hyper(temperature, alpha)
            self.temperature, self.alpha = float(temperature), float(alpha)
            if optimizer is not None:
                self.compile(optimizer=optimizer, metrics=metrics, student_loss_fn=student_loss,
                             distillation_loss_fn=distillation_loss, alpha=alpha,
                             temperature=temperature)
            elif distillation_loss is not None or student_loss is not None:
                raise ValueError("losses were given without an optimizer: pass optimizer= "
                                 "too, or configure everything with compile()")

        def compile(self, optimizer="adam", metrics=None, student_loss_fn=None,
                    distillation_loss_fn=None, alpha: float = 0.1, temperature: float = 3,
                    loss=None, **kwargs):
            """Configure training (the Keras distillation example's signature).

            ``student_loss_fn`` defaults to ``loss`` if given (so generic code that
            calls ``compile(optimizer, loss, metrics)`` works), else to sparse
            categorical cross-entropy matching the student's outputs;
            ``distillation_loss_fn`` defaults to ``KLDivergence()``. Other keyword
            arguments go to ``keras.Model.compile``.

            Raises:
                ValueError: temperature <= 0 or alpha outside [0, 1].
            """
            _check_hyper(temperature, alpha)
            super().compile(optimizer=optimizer, metrics=list(metrics) if metrics else None,
                            **kwargs)
            if student_loss_fn is None:
                student_loss_fn = loss
            if student_loss_fn is None:
                student_loss_fn = k.losses.SparseCategoricalCrossentropy(
                    from_logits=self.student_outputs == "logits")
            elif isinstance(student_loss_fn, str):
                student_loss_fn = k.losses.get(student_loss_fn)
            if distillation_loss_fn is None:
                distillation_loss_fn = k.losses.KLDivergence()
            elif isinstance(distillation_loss_fn, str):
                distillation_loss_fn = k.losses.get(distillation_loss_fn)
            self.student_loss_fn = student_loss_fn
            self.distillation_loss_fn = distillation_loss_fn
            self.alpha, self.temperature = float(alpha), float(temperature)
            self._configured = True

        @property
        def metrics(self):
            return [self._loss_tracker, self._student_tracker, self._distill_tracker,
                    *self.compiled_metrics.metrics] if self._is_compiled else [
                self._loss_tracker, self._student_tracker, self._distill_tracker]

        def soften(self, predictions, kind: str):
            """``softmax(logits / T)`` for raw model outputs of the given kind."""
            return tf_.nn.softmax(as_logits(predictions, kind) / self.temperature, axis=-1)

        def soft_targets(self, x):
            """The teacher's softened distribution for inputs ``x`` (what the student learns)."""
            return self.soften(self.teacher(x, training=False), self.teacher_outputs)

        def _distill_losses(self, x, y, sw, student_pred):
            teacher_pred = self.teacher(x, training=False)
            student_loss = apply_loss(self.student_loss_fn, y, student_pred, sw)
            distill = apply_loss(self.distillation_loss_fn,
                                 tf_.stop_gradient(self.soften(teacher_pred,
                                                               self.teacher_outputs)),
                                 self.soften(student_pred, self.student_outputs), sw)
            distill = distill * (self.temperature ** 2)
            total = self.alpha * student_loss + (1.0 - self.alpha) * distill
            return total, student_loss, distill

        def _distill_results(self, y, sw, student_pred, total, student_loss, distill):
            self._loss_tracker.update_state(total)
            self._student_tracker.update_state(student_loss)
            self._distill_tracker.update_state(distill)
            self.compiled_metrics.update_state(y, student_pred, sw)
            return {m.name: m.result() for m in self.metrics}

        def train_step(self, data):
            x, y, sw = k.utils.unpack_x_y_sample_weight(data)
            with tf_.GradientTape() as tape:
                student_pred = self.student(x, training=True)
                total, student_loss, distill = self._distill_losses(x, y, sw, student_pred)
                if self.student.losses:
                    total = total + tf_.add_n(self.student.losses)
            variables = self.student.trainable_variables
            grads = tape.gradient(total, variables)
            self.optimizer.apply_gradients(zip(grads, variables))
            return self._distill_results(y, sw, student_pred, total, student_loss, distill)

        def test_step(self, data):
            x, y, sw = k.utils.unpack_x_y_sample_weight(data)
            student_pred = self.student(x, training=False)
            total, student_loss, distill = self._distill_losses(x, y, sw, student_pred)
            return self._distill_results(y, sw, student_pred, total, student_loss, distill)

        def call(self, inputs, training=None):
            return self.student(inputs, training=training)

        def fit(self, *args, **kwargs):
            """``keras.Model.fit``; raises RuntimeError if not configured yet."""
            if not self._configured:
                raise RuntimeError(
                    "the Distiller has no optimizer yet: create it with "
                    "Distiller(teacher, student, optimizer='adam', ...) or call "
                    "compile(optimizer, metrics, student_loss_fn, distillation_loss_fn) first")
            return super().fit(*args, **kwargs)

    Distiller.__module__ = __name__
    return Distiller


def _check_hyper(temperature, alpha) -> None:
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")


_CLASS = None


def __getattr__(name: str):
    global _CLASS
    if name == "Distiller":
        if _CLASS is None:
            _CLASS = _make_class()
        return _CLASS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
