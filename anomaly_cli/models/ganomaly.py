"""GANomaly: an adversarially trained encoder-decoder-encoder (Akcay et al. 2018).

Seed 004's DCGAN (sec. 5.1) turned into a detector the way GANomaly does it:
a generator x -> z -> x_hat -> z_hat trained against a discriminator with
adversarial (feature matching), contextual (L1) and latent (L2) losses;
scored by the distance between z and z_hat.
See docs/models/ganomaly.md (losses, the seed's slips, numbers).
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from anomaly_cli.errors import AdxUserError
from anomaly_cli.models.base import (
    LATENT_DISTANCE,
    AnomalyModel,
    batch_inputs,
    error_tensor,
    input_gradient,
)
from anomaly_cli.models.blocks import BATCH_NORM_MOMENTUM, conv_widths
from anomaly_cli.models.hyperparameters import Hyperparameter, conv_stack, number
from anomaly_cli.scoring.reconstruction import (
    DEFAULT_TOP_K,
    ERRORS,
    error_map,
    reconstruction_error,
)

_WEIGHT_HINT = " (GANomaly: w_adv=1, w_con=50, w_enc=1)"


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
    model_name = "ganomaly"
    accepts = "image"
    # GANomaly's latent distance, or a reconstruction error of x_hat.
    score_kinds = (LATENT_DISTANCE, *ERRORS)
    hyperparameters: ClassVar[dict[str, Hyperparameter]] = {
        **conv_stack(filters=64, latent_dim=16),
        "w_adv": Hyperparameter(1.0, number(0, hint=_WEIGHT_HINT)),
        "w_con": Hyperparameter(50.0, number(0, hint=_WEIGHT_HINT)),
        "w_enc": Hyperparameter(1.0, number(0, hint=_WEIGHT_HINT)),
        "reset_threshold": Hyperparameter(
            1e-5, number(0, hint=" (GANomaly: 1e-5; 0 never re-initialises the discriminator)")
        ),
    }
    # Maps of a latent-distance score show the contextual loss's error.
    map_error = "mae"

    def __init__(self, sample_shape: tuple[int, ...], **config: Any):
        config.setdefault("name", "ganomaly")
        super().__init__(sample_shape, **config)
        widths = conv_widths(
            self.model_name, self.sample_shape, self.num_hidden_layers, self.filters
        )
        height, width, channels = self.sample_shape

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
        x = batch_inputs(data)
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
        x = batch_inputs(data)
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

    def reconstruct(self, x: Any) -> np.ndarray:
        """x_hat = G_D(G_E(x)), in inference mode."""
        return np.asarray(self.predict_on_batch(x))

    def score_batch(self, x: np.ndarray, top_k: float = DEFAULT_TOP_K) -> np.ndarray:
        if self.score_name != LATENT_DISTANCE:
            return reconstruction_error(x, self.reconstruct(x), self.score_name, top_k)
        z, z_hat = self.latents(x)
        diff = z.astype(np.float64) - z_hat.astype(np.float64)
        return np.sqrt(np.square(diff).sum(axis=1))

    def score_gradient(self, x: np.ndarray, top_k: float = DEFAULT_TOP_K) -> np.ndarray | None:
        """|d score / d x| through G_E, G_D (and E for the latent distance)."""

        def scores(inputs: Any) -> Any:
            z, x_hat, z_hat = self.generate(inputs)
            if self.score_name != LATENT_DISTANCE:
                return error_tensor(inputs, x_hat, self.score_name, top_k)
            return tf.norm(z - z_hat, axis=1)

        return input_gradient(x, scores)

    @property
    def produces_maps(self) -> bool:
        return True

    def map_batch(self, x: np.ndarray) -> np.ndarray:
        """The reconstruction error of x_hat per pixel: the score's kind, or mae
        (the contextual loss) for the latent distance."""
        kind = self.score_name if self.score_name in ERRORS else self.map_error
        return error_map(x, self.reconstruct(x), kind)
