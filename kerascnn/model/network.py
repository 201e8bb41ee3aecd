"""The network of the assignment, built for any task's image shape and class count, and the
per-layer table of what any model is made of.

    conv1 (32 3x3, same, ReLU) -> pool1 (2x2/2) -> conv2 (32 3x3, same, ReLU) -> pool2 (2x2/2)
    -> flatten (H/4 * W/4 * 32; 1,568 for MNIST) -> fc1 (500, ReLU) -> logits (K, no softmax)

With batch norm, a BatchNormalization sits after conv1, conv2 and fc1, before their ReLU (which then
becomes a layer of its own, `<name>_relu`, so that "the output of conv1" still means the rectified map).
The training model (`fused_batchnorm=True`) pools conv1's and conv2's maps before their ReLU: the same
function and gradients (max and ReLU commute), less work; its weights fit the plain model as they are.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

#: The assignment's task (MNIST): the defaults of `build_model`.
ASSIGNMENT_INPUT_SHAPE = (28, 28, 1)
ASSIGNMENT_CLASSES = 10
#: Layers whose output is the rectified feature map of a block (without batch norm: the layer itself).
BLOCKS = ("conv1", "conv2", "fc1")


def build_model(batchnorm: bool = False, dtype_policy: str | None = None,
                input_shape: tuple[int, int, int] = ASSIGNMENT_INPUT_SHAPE, num_classes: int = ASSIGNMENT_CLASSES,
                fused_batchnorm: bool = False, synchronized: bool = False, pool_first: bool | None = None):
    """A functional keras.Model mapping (N, H, W, C) float32 in [0, 1] to (N, K) float32 logits.

    dtype_policy: a Keras dtype policy for the hidden layers ("mixed_bfloat16" for fast training on
    CPUs with bf16 support); the logits are always float32. Layer names are fixed (see module doc).
    fused_batchnorm: batch norm through TensorFlow's fused kernels (kerascnn.model.batchnorm: the same
    variables and arithmetic, for training); otherwise Keras' own BatchNormalization.
    synchronized: batch statistics over all replicas of a tf.distribute strategy (those of the global
    batch, as on one device; kerascnn.training.devices), through Keras' own computation.
    pool_first: conv1 and conv2 pool their maps before the ReLU; the same function, gradients and
    weights (see the module docstring). Default: the training model with batch norm only. Without
    batch norm it lost the fused conv + bias + ReLU kernel and gained nothing (bench_step.py
    --pool-first, 2026-12-04: fp32 batch 16 18% slower, bf16 and batch 64 within 3%).
    """
    import keras

    policy = dtype_policy or "float32"
    if fused_batchnorm:
        from kerascnn.model.batchnorm import FusedBatchNormalization as BatchNormalization
    else:
        BatchNormalization = keras.layers.BatchNormalization

    pool_first = fused_batchnorm and batchnorm if pool_first is None else pool_first

    def block(x, layer, name, pool=None):
        """layer (+ batch norm and ReLU), then the pool if any."""
        x = layer(x)
        if batchnorm:
            x = BatchNormalization(name=f"{name}_bn", dtype=policy, synchronized=synchronized)(x)
        if batchnorm or pool is not None and pool_first:
            relu = keras.layers.ReLU(name=f"{name}_relu", dtype=policy)
            if pool is not None and pool_first:
                # The training model pools before the ReLU: max and ReLU commute exactly (ReLU keeps
                # order), gradients included, and the ReLU's backward pass then reads a map a quarter
                # the size. The saved model keeps the assignment's order (conv1_relu is the full map).
                return relu(pool(x))
            x = relu(x)
        return x if pool is None else pool(x)

    # With batch norm the layers keep their biases (redundant before the mean subtraction, but the
    # switch then only *inserts* layers, as in the assignment, and the base 799,078 stay as they are).
    act = None if batchnorm else "relu"
    conv_act = None if batchnorm or pool_first else "relu"  # conv1 and conv2 are followed by their pool
    inputs = keras.Input(tuple(input_shape), name="image")
    x = block(inputs, keras.layers.Conv2D(32, 3, padding="same", activation=conv_act, name="conv1", dtype=policy),
              "conv1", keras.layers.MaxPooling2D(2, 2, name="pool1", dtype=policy))
    x = block(x, keras.layers.Conv2D(32, 3, padding="same", activation=conv_act, name="conv2", dtype=policy),
              "conv2", keras.layers.MaxPooling2D(2, 2, name="pool2", dtype=policy))
    x = keras.layers.Flatten(name="flatten", dtype=policy)(x)
    x = block(x, keras.layers.Dense(500, activation=act, name="fc1", dtype=policy), "fc1")
    logits = keras.layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name="cnn_bn" if batchnorm else "cnn")


def has_batchnorm(model) -> bool:
    import keras

    return any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


# ---------------------------------------------------------------------------- the table
@dataclass
class LayerRow:
    """One layer: its output shape per image, parameters, units (activations per image) and MACs."""
    name: str
    kind: str
    output_shape: tuple
    params: int
    units: int
    macs: int


@dataclass
class ModelTable:
    rows: list[LayerRow]

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def total_units(self) -> int:
        return sum(r.units for r in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def params_of(self, kind: str) -> int:
        return sum(r.params for r in self.rows if r.kind == kind)

    def to_dict(self) -> dict:
        layers = [{k: v for k, v in asdict(r).items() if k != "kind"} for r in self.rows]
        for layer in layers:
            layer["output_shape"] = list(layer["output_shape"])
        return {"layers": layers, "total_params": self.total_params, "total_units": self.total_units,
                "total_macs": self.total_macs, "conv_params": self.params_of("conv"),
                "dense_params": self.params_of("dense")}


def layer_table(model) -> ModelTable:
    """Counts each layer of `model` (the input layer excluded).

    MACs are multiply-adds per image in the forward pass: a convolution does H*W*C_out*(k*k*C_in),
    a dense layer in*out; batch norm is counted as one multiply-add per unit (its inference form,
    a scale and a shift); pooling, flatten and ReLU do none.
    """
    import keras

    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = tuple(int(d) for d in layer.output.shape[1:])
        units = 1
        for d in shape:
            units *= d
        params = int(layer.count_params())
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            c_in = int(layer.input.shape[-1])
            kind, macs = "conv", units * kh * kw * c_in
        elif isinstance(layer, keras.layers.Dense):
            kind, macs = "dense", int(layer.input.shape[-1]) * units
        elif isinstance(layer, keras.layers.BatchNormalization):
            kind, macs = "batchnorm", units
        elif isinstance(layer, keras.layers.MaxPooling2D):
            kind, macs = "pool", 0
        else:
            kind, macs = type(layer).__name__.lower(), 0
        rows.append(LayerRow(layer.name, kind, shape, params, units, macs))
    return ModelTable(rows)
