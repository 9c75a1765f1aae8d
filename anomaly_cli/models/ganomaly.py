"""GANomaly: an adversarially trained encoder-decoder-encoder (Akcay et al. 2018).

Motivated by the GAN part of seed 004 (sec. 5.1, a DCGAN on MNIST), turned from
image synthesis into anomaly detection the way GANomaly does it.

Generator: encoder G_E maps x to z, decoder G_D maps z to x_hat, a second
encoder E maps x_hat to z_hat. Discriminator D: a conv feature extractor f
(same layout as G_E's conv stack) and one logit on top. Trained on normal
samples only, per batch:

    generator:      L_G = w_adv * mean((f(x) - f(x_hat))^2)   adversarial, feature matching
                        + w_con * mean(|x - x_hat|)           contextual, L1
                        + w_enc * mean((z - z_hat)^2)          latent, L2
    discriminator:  L_D = (BCE(D(x), 1) + BCE(D(x_hat), 0)) / 2,  x_hat held fixed

G takes its step first, then D, with two optimizers: G uses the optimizer the
model is compiled with (optimizer=... in the config), D a fresh clone of it
with its own state (`clone_optimizer`). As in GANomaly's released code, D is
re-initialised (weights only, its optimizer state kept) whenever L_D falls
below `reset_threshold`: a discriminator that wins outright gives the
generator no useful feature-matching signal. 0 switches that off. `d_resets`
in the training logs counts the re-initialisations of each epoch.

Validation loss (test_step): w_con * contextual + w_enc * latent, all in
inference mode. The adversarial term is left out on purpose: it is measured
by a discriminator that keeps changing, so it is not comparable from one epoch
to the next and would make early stopping and "best checkpoint" follow the
discriminator rather than the generator.

Score (GANomaly's A(x)): ||G_E(x) - E(G_D(G_E(x)))||, the Euclidean distance
between the two latents (`score: latent_distance`; the paper's mean squared
difference ranks samples identically). `score` may instead name a
reconstruction error (mse, mae, ...) of x_hat. Maps are reconstruction-error
maps: the contextual loss's absolute error (mae) with latent_distance,
otherwise the error `score` names.

Networks follow the DCGAN conventions seed 004 uses (strided 4x4
convolutions, BatchNorm, leaky ReLU in the encoders and D, ReLU in the
decoder, no BatchNorm on D's input layer) with DCGAN's and GANomaly's N(0, 0.02)
weight init. BatchNorm's moving averages use momentum 0.9 (PyTorch's 0.1, which
GANomaly's code runs with): with Keras' 0.99 the inference-mode statistics still
lean on their initial values after a few hundred steps, and the latent score of
a briefly trained model came out inverted (AUROC 0.2-0.3 on planted images).
blocks.conv_encoder/conv_decoder are not used because they fix 3x3 kernels
and put the activation before BatchNorm. The latent is a Dense
layer on the flattened last feature map, which equals GANomaly's final conv
whose kernel covers the whole map.

Slips in the seed settled here:
- Its leaky ReLUs use slope 0.01; DCGAN (and GANomaly) use 0.2.
- Its `train_gan(epochs=10)` trains on one random batch per "epoch", i.e. ten
  steps in all; training here runs over whole epochs through Keras' fit.
- Its generator ends in tanh for images scaled to [-1, 1]; adx images lie in
  [0, 1], so G_D ends in a sigmoid.
- It sets `discriminator.trainable = False` after compiling D, relying on
  Keras 2 fixing the trainable weights at compile time. Keras 3 reads the flag
  when a step runs, so D's own train_on_batch would update nothing (checked:
  "The model does not have any trainable weights"). Here each optimizer
  updates an explicit list of variables, G's and D's.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import LATENT_DISTANCE, AnomalyModel, require_shape
from anomaly_cli.models.blocks import BATCH_NORM_MOMENTUM, doubling_widths
from anomaly_cli.scoring.reconstruction import ERRORS

# The objective is GANomaly's own; there is no per-pixel loss to choose.
OBJECTIVE = "ganomaly"


def _kernel_init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(0.0, 0.02)


def _gamma_init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(1.0, 0.02)


def _batch_norm() -> layers.Layer:
    return layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, gamma_initializer=_gamma_init())


def dcgan_features(widths: list[int]) -> list[layers.Layer]:
    """DCGAN discriminator-style stack: 4x4 stride-2 convs, BatchNorm from the
    second layer on (none on the input layer), leaky ReLU 0.2."""
    stack: list[layers.Layer] = []
    for i, width in enumerate(widths):
        # Biases are redundant in front of BatchNorm's shift.
        stack.append(
            layers.Conv2D(
                width,
                4,
                strides=2,
                padding="same",
                use_bias=i == 0,
                kernel_initializer=_kernel_init(),
            )
        )
        if i:
            stack.append(_batch_norm())
        stack.append(layers.LeakyReLU(0.2))
    return stack


def dcgan_encoder(
    sample_shape: tuple[int, ...], widths: list[int], latent_dim: int, name: str
) -> keras.Sequential:
    """dcgan_features, flatten, linear latent."""
    return keras.Sequential(
        [
            keras.Input(tuple(sample_shape)),
            *dcgan_features(widths),
            layers.Flatten(),
            layers.Dense(latent_dim, kernel_initializer=_kernel_init(), name="latent"),
        ],
        name=name,
    )


def dcgan_decoder(
    latent_dim: int, image_shape: tuple[int, int, int], widths: list[int], name: str
) -> keras.Sequential:
    """DCGAN generator-style mirror: dense to the smallest map, 4x4 stride-2
    transposed convs with BatchNorm and ReLU, a sigmoid on the last one."""
    height, width, channels = image_shape
    factor = 2 ** len(widths)
    start = (height // factor, width // factor, widths[-1])
    stack: list[layers.Layer] = [
        layers.Dense(
            start[0] * start[1] * start[2], use_bias=False, kernel_initializer=_kernel_init()
        ),
        layers.Reshape(start),
        _batch_norm(),
        layers.ReLU(),
    ]
    for w in reversed(widths[:-1]):
        stack += [
            layers.Conv2DTranspose(
                w, 4, strides=2, padding="same", use_bias=False, kernel_initializer=_kernel_init()
            ),
            _batch_norm(),
            layers.ReLU(),
        ]
    stack.append(
        layers.Conv2DTranspose(
            channels,
            4,
            strides=2,
            padding="same",
            activation="sigmoid",
            kernel_initializer=_kernel_init(),
        )
    )
    return keras.Sequential([keras.Input((latent_dim,)), *stack], name=name)


def clone_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """Same class and settings (learning-rate schedule included), fresh state."""
    return type(optimizer).from_config(optimizer.get_config())


@keras.saving.register_keras_serializable(package="adx")
class GANomaly(AnomalyModel):
    loss_kinds = (OBJECTIVE,)
    score_kinds = (LATENT_DISTANCE, *ERRORS)
    map_error = "mae"  # the contextual loss's error, for a latent-distance score

    def __init__(
        self,
        sample_shape: tuple[int, ...],
        num_hidden_layers: int = 3,
        num_filters: int = 64,
        latent_dim: int = 16,
        w_adv: float = 1.0,
        w_con: float = 50.0,
        w_enc: float = 1.0,
        reset_threshold: float = 1e-5,
        loss: str = OBJECTIVE,
        score: str = LATENT_DISTANCE,
        **kwargs: Any,
    ):
        kwargs.setdefault("name", "ganomaly")
        super().__init__(sample_shape=sample_shape, loss=loss, score=score, **kwargs)
        height, width, channels = require_shape("ganomaly", self.sample_shape, "image")
        widths = doubling_widths(
            "ganomaly", self.sample_shape, int(num_hidden_layers), int(num_filters), int(latent_dim)
        )
        for key, value in (("w_adv", w_adv), ("w_con", w_con), ("w_enc", w_enc)):
            if not float(value) >= 0:
                raise AdxUserError(
                    f"model.{key}={value} must be >= 0 (GANomaly: w_adv=1, w_con=50, w_enc=1)"
                )
        if not float(reset_threshold) >= 0:
            raise AdxUserError(
                f"model.reset_threshold={reset_threshold} must be >= 0 "
                "(GANomaly: 1e-5; 0 never re-initialises the discriminator)"
            )
        self.num_hidden_layers = int(num_hidden_layers)
        self.num_filters = int(num_filters)
        self.latent_dim = int(latent_dim)
        self.w_adv = float(w_adv)
        self.w_con = float(w_con)
        self.w_enc = float(w_enc)
        self.reset_threshold = float(reset_threshold)

        self.encoder = dcgan_encoder(self.sample_shape, widths, self.latent_dim, "encoder")
        self.decoder = dcgan_decoder(self.latent_dim, (height, width, channels), widths, "decoder")
        self.encoder2 = dcgan_encoder(self.sample_shape, widths, self.latent_dim, "encoder2")
        self.disc_features = keras.Sequential(
            [keras.Input(self.sample_shape), *dcgan_features(widths)], name="disc_features"
        )
        last = self.disc_features.output_shape[1:]
        self.disc_head = keras.Sequential(
            [
                keras.Input(last),
                layers.Flatten(),
                layers.Dense(1, kernel_initializer=_kernel_init(), name="logit"),
            ],
            name="disc_head",
        )
        # Drawn from the seeded global RNG, so seeded training repeats; saved with the weights.
        self.reset_noise = keras.random.SeedGenerator(name="discriminator_reset")
        # Set by compile(); a checkpoint loaded with compile=True restores its state.
        self.disc_optimizer: keras.optimizers.Optimizer | None = None

        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.adv_tracker = keras.metrics.Mean(name="adv_loss")
        self.con_tracker = keras.metrics.Mean(name="con_loss")
        self.enc_tracker = keras.metrics.Mean(name="enc_loss")
        self.disc_tracker = keras.metrics.Mean(name="d_loss")
        self.resets_tracker = keras.metrics.Sum(name="d_resets")

    # Networks.
    @property
    def generator_variables(self) -> list[Any]:
        return [
            *self.encoder.trainable_variables,
            *self.decoder.trainable_variables,
            *self.encoder2.trainable_variables,
        ]

    @property
    def discriminator_variables(self) -> list[Any]:
        return [*self.disc_features.trainable_variables, *self.disc_head.trainable_variables]

    def generate(self, x: Any, training: bool = False) -> tuple[Any, Any, Any]:
        """z = G_E(x), x_hat = G_D(z), z_hat = E(x_hat)."""
        z = self.encoder(x, training=training)
        x_hat = self.decoder(z, training=training)
        return z, x_hat, self.encoder2(x_hat, training=training)

    def discriminate(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        """D's feature map and its real-vs-fake logit."""
        features = self.disc_features(x, training=training)
        return features, self.disc_head(features, training=training)

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.generate(inputs, training=training)[1]

    # Losses.
    def generator_losses(self, x: Any, training: bool = False) -> dict[str, Any]:
        """The weighted total `loss` and its unweighted parts adv_loss, con_loss,
        enc_loss, plus `loss_without_adv`, the total without the adversarial part; and the
        reconstruction x_hat for the discriminator's step."""
        z, x_hat, z_hat = self.generate(x, training=training)
        real_features, _ = self.discriminate(x, training=training)
        fake_features, _ = self.discriminate(x_hat, training=training)
        adv = tf.reduce_mean(tf.square(real_features - fake_features))
        con = tf.reduce_mean(tf.abs(x - x_hat))
        enc = tf.reduce_mean(tf.square(z - z_hat))
        without_adv = self.w_con * con + self.w_enc * enc
        return {
            "loss": self.w_adv * adv + without_adv,
            "adv_loss": adv,
            "con_loss": con,
            "enc_loss": enc,
            "loss_without_adv": without_adv,
            "x_hat": x_hat,
        }

    def discriminator_loss(self, x: Any, x_hat: Any, training: bool = False) -> Any:
        _, real = self.discriminate(x, training=training)
        _, fake = self.discriminate(tf.stop_gradient(x_hat), training=training)
        bce = keras.losses.binary_crossentropy
        return 0.5 * (
            tf.reduce_mean(bce(tf.ones_like(real), real, from_logits=True))
            + tf.reduce_mean(bce(tf.zeros_like(fake), fake, from_logits=True))
        )

    # Training.
    def compile(self, optimizer: Any = "adam", **kwargs: Any) -> None:
        """Compile with the generator's optimizer; D gets a clone of it. Both are
        built here on their own variables, so a checkpoint's optimizer state has
        the same layout when compile_from_config rebuilds them."""
        super().compile(optimizer=optimizer, **kwargs)
        self.disc_optimizer = clone_optimizer(self.optimizer)
        self.optimizer.build(self.generator_variables)
        self.disc_optimizer.build(self.discriminator_variables)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        # Keras' own version skips a custom compile(); this one runs it.
        self.compile(**keras.saving.deserialize_keras_object(config))

    def compile_for_training(self, optimizer: keras.optimizers.Optimizer) -> None:
        # train_step and test_step compute the losses themselves.
        self.compile(optimizer=optimizer)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [
            self.loss_tracker,
            self.adv_tracker,
            self.con_tracker,
            self.enc_tracker,
            self.disc_tracker,
            self.resets_tracker,
        ]

    def train_step(self, data: Any) -> dict[str, Any]:
        if self.disc_optimizer is None:
            raise AdxUserError("model=ganomaly must be compiled before training")
        x = data[0] if isinstance(data, (tuple, list)) else data
        g_vars, d_vars = self.generator_variables, self.discriminator_variables
        with tf.GradientTape() as tape:
            parts = self.generator_losses(x, training=True)
        g_grads = tape.gradient(parts["loss"], g_vars)
        self.optimizer.apply_gradients(zip(g_grads, g_vars, strict=True))
        with tf.GradientTape() as tape:
            d_loss = self.discriminator_loss(x, parts["x_hat"], training=True)
        d_grads = tape.gradient(d_loss, d_vars)
        self.disc_optimizer.apply_gradients(zip(d_grads, d_vars, strict=True))
        reset = d_loss < self.reset_threshold
        if self.reset_threshold > 0:
            tf.cond(reset, self._reset_discriminator, lambda: tf.constant(False))
        self.loss_tracker.update_state(parts["loss"])
        self.adv_tracker.update_state(parts["adv_loss"])
        self.con_tracker.update_state(parts["con_loss"])
        self.enc_tracker.update_state(parts["enc_loss"])
        self.disc_tracker.update_state(d_loss)
        self.resets_tracker.update_state(tf.cast(reset, "float32"))
        return {m.name: m.result() for m in self.metrics}

    def _reset_discriminator(self) -> Any:
        """GANomaly's weights_init on D again: N(0, 0.02) kernels, N(1, 0.02)
        BatchNorm scales, zero biases and shifts, fresh moving statistics."""
        for layer in [*self.disc_features.layers, *self.disc_head.layers]:
            if isinstance(layer, layers.BatchNormalization):
                shape = layer.gamma.shape
                layer.gamma.assign(
                    keras.random.normal(
                        shape, 1.0, 0.02, dtype=layer.gamma.dtype, seed=self.reset_noise
                    )
                )
                layer.beta.assign(tf.zeros(shape, layer.beta.dtype))
                layer.moving_mean.assign(tf.zeros(shape, layer.moving_mean.dtype))
                layer.moving_variance.assign(tf.ones(shape, layer.moving_variance.dtype))
            elif isinstance(layer, (layers.Conv2D, layers.Dense)):
                kernel = layer.kernel
                kernel.assign(
                    keras.random.normal(
                        kernel.shape, 0.0, 0.02, dtype=kernel.dtype, seed=self.reset_noise
                    )
                )
                if layer.bias is not None:
                    layer.bias.assign(tf.zeros(layer.bias.shape, layer.bias.dtype))
        return tf.constant(True)

    def test_step(self, data: Any) -> dict[str, Any]:
        x = data[0] if isinstance(data, (tuple, list)) else data
        parts = self.generator_losses(x, training=False)
        # Early stopping watches `loss`: the generator's objective without the
        # adversarial term, whose discriminator changes from epoch to epoch.
        self.loss_tracker.update_state(parts["loss_without_adv"])
        self.adv_tracker.update_state(parts["adv_loss"])
        self.con_tracker.update_state(parts["con_loss"])
        self.enc_tracker.update_state(parts["enc_loss"])
        trackers = (self.loss_tracker, self.adv_tracker, self.con_tracker, self.enc_tracker)
        return {m.name: m.result() for m in trackers}

    # Scoring.
    def latents(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """z = G_E(x) and z_hat = E(G_D(z)), in inference mode."""
        z, _, z_hat = self.generate(tf.convert_to_tensor(x, dtype="float32"))
        return np.asarray(z), np.asarray(z_hat)

    def score_batch(self, x: np.ndarray) -> np.ndarray:
        if self.score_name != LATENT_DISTANCE:
            return super().score_batch(x)
        z, z_hat = self.latents(x)
        diff = z.astype(np.float64) - z_hat.astype(np.float64)
        return np.sqrt(np.square(diff).sum(axis=1))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_hidden_layers=self.num_hidden_layers,
            num_filters=self.num_filters,
            latent_dim=self.latent_dim,
            w_adv=self.w_adv,
            w_con=self.w_con,
            w_enc=self.w_enc,
            reset_threshold=self.reset_threshold,
        )
        return config
