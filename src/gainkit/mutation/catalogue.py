"""Named faults in ``torch.nn.init``, and a pytest plugin that runs the suite against one.

The conformance suite proves it is sharp by failing on each of these realistic
regressions: ``pytest --pyargs gainkit.conformance -p gainkit.mutation.catalogue --gainkit-mutant
NAME`` (the fault is installed in this process's ``torch.nn.init`` before the suite imports it, and
removed at the end: the installed torch is never modified). ``gainkit mutate`` runs the whole
catalogue.

A mutant is data: a name, what it breaks, the categories of regression it stands for
(``tags``, see ``REQUIRED_TAGS``), which conformance files must catch it, a ``-k``
expression selecting the tests that matter there (the quick slice CI runs) and the
attributes it replaces: ``torch.nn.init`` functions by name, or a module's reset method by its
dotted path under torch (``nn.Linear.reset_parameters``: the module defaults, see
``target``). Each replacement is built from the
``torch.nn.init`` module and the original attribute, and keeps the signature of every
release (1.0 ``xavier_normal_(tensor, gain=1)`` ... 2.x ``xavier_normal_(tensor, gain=1.0,
generator=None)``): extra arguments are passed through. Functions in ``torch.nn.init`` look
each other up as module globals at call time, so replacing ``calculate_gain`` also changes
what ``kaiming_*`` draw, and replacing a fan helper changes every init that uses it.

Adding a mutant is one ``Mutant(...)`` entry in ``CATALOGUE``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

from gainkit import activations

SQRT3 = math.sqrt(3.0)
VALUES, DOCSTRING, INIT, STABILITY = ("test_values.py", "test_docstring.py",
                                      "test_init_functions.py", "test_stability.py")
MODULE_DEFAULTS, DEFAULT_STACKS = "test_module_defaults.py", "test_default_stacks.py"
GAIN_FILES = (VALUES, DOCSTRING, INIT, STABILITY)
ARGUMENTS, ORTHOGONAL = "test_init_arguments.py", "test_orthogonal.py"
CONV_MODES, CONV_STABILITY = "test_conv_modes.py", "test_conv_stability.py"
# Every conformance file some mutant must fail (the gain files catch every gain change; a conv
# gain's deep-network checks are the conv stacks', not the MLP file's).
CONFORMANCE_FILES = GAIN_FILES + (ARGUMENTS, ORTHOGONAL, MODULE_DEFAULTS, DEFAULT_STACKS,
                                  CONV_MODES, CONV_STABILITY)
CONV_GAIN_FILES = (VALUES, CONV_STABILITY)
LINEAR_NAMES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d", "sigmoid")
DEFAULT_SLOPE = activations.get("leaky_relu").defaults["negative_slope"]

# The regressions issue 6 requires the catalogue to cover; each must be some mutant's tag.
REQUIRED_TAGS = {
    "gain:tanh": "tanh's gain off by a few percent",
    "gain:relu": "relu's gain off by a few percent",
    "gain:selu": "selu's gain off by a few percent",
    "gain:sigmoid": "sigmoid's gain off by a few percent",
    "gain:leaky_relu-default": "leaky_relu's gain at its default slope off",
    "selu-missing": "calculate_gain('selu') unsupported, as before torch 1.8",
    "leaky-param-ignored": "leaky_relu's negative_slope ignored",
    "leaky-bool-accepted": "a bool accepted as leaky_relu's negative_slope",
    "xavier-fan-in-only": "xavier_* using fan_in only",
    "xavier-average": "xavier_* averaging the fans wrongly",
    "kaiming-mode": "kaiming_*'s mode swapped or ignored",
    "kaiming-conv-fan": "kaiming_*'s fan computed wrongly for conv weights",
    "uniform-bound": "a uniform bound without the sqrt(3)",
    "family-swap": "a normal init drawing uniform values, or the reverse",
    "docstring-row": "a row of calculate_gain's docstring table missing",
    "error-message": "the 'Unsupported nonlinearity' error changed",
    # issue 11: the modules' own defaults
    "module-default:linear": "nn.Linear's default init changed (the a=sqrt(5) of #57109)",
    "module-default:conv": "nn.Conv*'s default init changed",
    "module-default:bias": "a default bias bound taken from the wrong fan",
    "module-default:channels_last": "the channels_last path of _ConvNd.reset_parameters broken",
    "module-default:attention": "nn.MultiheadAttention's stacked in_proj init changed",
    "module-default:family": "a module default drawing normal values where it drew uniform",
    "docstring-lost": "calculate_gain wrapped so that its docstring is lost",
    "generator-ignored": "an init drawing from the global RNG whatever generator= says",
    "kaiming-a-ignored": "kaiming_* not passing a (leaky_relu's slope) to calculate_gain",
    "orthogonal-gain": "orthogonal_ ignoring or mangling its gain",
    "reduced-precision": "an init that draws wrongly only for float16/bfloat16 weights",
    # issue 12: conv fans, where torch's convention and the counts part
    "conv-fan:receptive-field": "a conv fan's receptive field from the wrong kernel dimensions",
    "conv-fan:groups": "groups ignored in a fan, or fan_out 'fixed' to divide by groups",
    "conv-fan:transposed": "ConvTranspose's fans read from the other dimensions (#18182 fixed)",
}

# build(init_module, original_attribute) -> replacement
Builder = Callable[[object, Callable], Callable]


class NotApplicable(Exception):
    """The fault cannot be installed in this torch (e.g. the text it edits is absent)."""


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    tags: Tuple[str, ...]
    replacements: Dict[str, Builder]
    caught_by: Tuple[str, ...]  # conformance files each expected to fail under it
    select: str = ""  # pytest -k expression for the tests that matter ("" = all)

    def apply(self, init) -> Dict[str, Callable]:
        """Install the faults into ``init``; returns the originals for :func:`restore`."""
        originals = {attribute: lookup(init, attribute) for attribute in self.replacements}
        replacements = {attribute: build(init, originals[attribute])
                        for attribute, build in self.replacements.items()}
        for attribute, replacement in replacements.items():
            setattr(*target(init, attribute), replacement)
        return originals


def target(init, attribute: str) -> Tuple[object, str]:
    """``(owner, name)`` of a replaced attribute: ``torch.nn.init`` for a plain name; for a
    dotted path under ``torch`` ("nn.Linear.reset_parameters", a module default) the class
    that path names, which must define the method itself (so that restoring it is exact)."""
    if "." not in attribute:
        return init, attribute
    import torch

    path, _, name = attribute.rpartition(".")
    owner = torch
    for part in path.split("."):
        owner = getattr(owner, part, None)
        if owner is None:
            raise NotApplicable(f"this torch has no torch.{path}")
    if name not in vars(owner):
        raise NotApplicable(f"torch.{path} does not define {name} itself")
    return owner, name


def lookup(init, attribute: str) -> Callable:
    """The current value of a replaced attribute (see :func:`target`)."""
    owner, name = target(init, attribute)
    return vars(owner)[name] if owner is not init else getattr(init, name)


def restore(init, originals: Dict[str, Callable]) -> None:
    for attribute, original in originals.items():
        setattr(*target(init, attribute), original)


# calculate_gain faults ---------------------------------------------------------------------

def gain_rewrite(rewrite: Callable) -> Builder:
    """calculate_gain as ``rewrite(original, nonlinearity, param)``."""

    def build(init, original):
        @functools.wraps(original)
        def calculate_gain(nonlinearity, param=None):
            return rewrite(original, nonlinearity, param)

        return calculate_gain

    return build


def scaled_gain(nonlinearity: str, factor: float) -> Builder:
    """calculate_gain returns ``factor`` times the right gain for one name."""

    def rewrite(original, name, param):
        gain = original(name, param)
        return gain * factor if name == nonlinearity else gain

    return gain_rewrite(rewrite)


def replaced_gain(nonlinearity: str, value: float) -> Builder:
    def rewrite(original, name, param):
        return value if name == nonlinearity else original(name, param)

    return gain_rewrite(rewrite)


def selu_unsupported(original, name, param):
    if name == "selu":
        raise ValueError(f"Unsupported nonlinearity {name}")
    return original(name, param)


def leaky_param_ignored(original, name, param):
    return original(name, None if name == "leaky_relu" else param)


def leaky_bool_accepted(original, name, param):
    # the bool check dropped: isinstance(True, int) holds, so True is slope 1
    if name == "leaky_relu" and isinstance(param, bool):
        return math.sqrt(2.0 / (1 + int(param) ** 2))
    return original(name, param)


def leaky_slope_not_squared(original, name, param):
    gain = original(name, param)  # keeps upstream's validation of param
    if name != "leaky_relu":
        return gain
    slope = DEFAULT_SLOPE if param is None else param
    return math.sqrt(2.0 / (1 + slope))


def leaky_default_slope(slope: float):
    def rewrite(original, name, param):
        if name == "leaky_relu" and param is None:
            return original(name, slope)
        return original(name, param)

    return rewrite


def linear_gain_float(original, name, param):
    gain = original(name, param)
    return float(gain) if name in LINEAR_NAMES else gain


def error_reworded(original, name, param):
    try:
        return original(name, param)
    except ValueError as error:
        if not str(error).startswith("Unsupported nonlinearity"):
            raise
    raise ValueError(f"Unsupported nonlinearity {name!r}")


def error_key_error(original, name, param):
    # a table-driven rewrite: GAINS[nonlinearity] raises KeyError for unknown names
    try:
        return original(name, param)
    except ValueError as error:
        if not str(error).startswith("Unsupported nonlinearity"):
            raise
    raise KeyError(name)


def names_case_insensitive(original, name, param):
    return original(name.lower() if isinstance(name, str) else name, param)


def docstring_without_row(label: str) -> Builder:
    """calculate_gain unchanged, its docstring table without the row ``label``."""

    def build(init, original):
        doc = original.__doc__ or ""
        lines = doc.splitlines(keepends=True)
        kept = [line for line in lines if not line.strip().startswith(label + " ")]
        if len(kept) == len(lines):
            raise NotApplicable(f"calculate_gain's docstring has no {label!r} row to drop")

        @functools.wraps(original)
        def calculate_gain(nonlinearity, param=None):
            return original(nonlinearity, param)

        calculate_gain.__doc__ = "".join(kept)
        return calculate_gain

    return build


# fan faults --------------------------------------------------------------------------------

def receptive_field(tensor) -> int:
    return tensor[0][0].numel() if tensor.dim() > 2 else 1


def fan_rewrite(rewrite: Callable) -> Builder:
    """_calculate_correct_fan as ``rewrite(original, tensor, mode)``."""

    def build(init, original):
        @functools.wraps(original)
        def _calculate_correct_fan(tensor, mode):
            return rewrite(original, tensor, mode)

        return _calculate_correct_fan

    return build


def mode_swapped(original, tensor, mode):
    swapped = {"fan_in": "fan_out", "fan_out": "fan_in"}.get(mode.lower(), mode)
    return original(tensor, swapped)


def mode_ignored(original, tensor, mode):
    original(tensor, mode)  # keeps upstream's validation of mode
    return original(tensor, "fan_in")


def fan_without_receptive_field(original, tensor, mode):
    return original(tensor, mode) // receptive_field(tensor)


def fans_counting(kernel_dims: Callable[[object], Tuple[int, ...]], min_dim: int = 3) -> Builder:
    """Fans whose receptive field is the product of ``kernel_dims(tensor)`` only, for weights
    of at least ``min_dim`` dimensions (code written for fewer kernel dimensions)."""

    def build(init, original):
        @functools.wraps(original)
        def _calculate_fan_in_and_fan_out(tensor):
            fan_in, fan_out = original(tensor)
            if tensor.dim() < min_dim:
                return fan_in, fan_out
            field, kept = receptive_field(tensor), 1
            for size in kernel_dims(tensor):
                kept *= size
            return fan_in // field * kept, fan_out // field * kept

        return _calculate_fan_in_and_fan_out

    return build


# the last kernel dimension only (1-D code), the first only, the first two of a 3-D kernel
fans_last_kernel_dim_only = fans_counting(lambda tensor: (tensor.size(-1),))
fans_first_kernel_dim_only = fans_counting(lambda tensor: (tensor.size(2),))
fans_two_kernel_dims = fans_counting(lambda tensor: (tensor.size(2), tensor.size(3)), min_dim=5)


def fan_out_depthwise_guess(init, original):
    """PR #24315's depthwise detection: a weight with one input channel per group is taken as
    depthwise with channel multiplier 1, and its fan_out as the receptive field alone."""

    @functools.wraps(original)
    def _calculate_fan_in_and_fan_out(tensor):
        fan_in, fan_out = original(tensor)
        if tensor.dim() > 2 and tensor.size(1) == 1:
            return fan_in, receptive_field(tensor)
        return fan_in, fan_out

    return _calculate_fan_in_and_fan_out


# A fan helper that knows the module: what a fix of #23854 or #18182 needs, since a weight's
# shape tells neither the groups nor that it is transposed. _ConvNd.reset_parameters (which
# construction runs) tags the weight with (in_channels, out_channels, groups, transposed) before
# its own draw, so the module's default sees the new fans too; the fan helper reads the tag.
CONV_TAG = "_gainkit_conv_layout"


def tag_conv_weights(init, original):
    @functools.wraps(original)
    def reset_parameters(self):
        setattr(self.weight, CONV_TAG, (self.in_channels, self.out_channels, self.groups,
                                        bool(self.transposed)))
        return original(self)

    return reset_parameters


def module_aware_fans(rewrite: Callable) -> Builder:
    """_calculate_fan_in_and_fan_out as ``rewrite(fan_in, fan_out, tensor, layout)`` for tagged
    conv weights (``layout``: in, out, groups, transposed), unchanged for any other tensor."""

    def build(init, original):
        @functools.wraps(original)
        def _calculate_fan_in_and_fan_out(tensor):
            fan_in, fan_out = original(tensor)
            layout = getattr(tensor, CONV_TAG, None)
            if layout is None:
                return fan_in, fan_out
            return rewrite(fan_in, fan_out, tensor, layout)

        return _calculate_fan_in_and_fan_out

    return build


def fan_out_over_groups(fan_in, fan_out, tensor, layout):
    return fan_in, fan_out // layout[2]  # #23854 "fixed": each input's count (Conv)


def fan_in_groups_ignored(fan_in, fan_out, tensor, layout):
    return fan_in * layout[2], fan_out  # every input channel counted, not the group's


def transposed_fans_swapped(fan_in, fan_out, tensor, layout):
    return (fan_out, fan_in) if layout[3] else (fan_in, fan_out)  # #18182 "fixed"


def module_fan_fault(rewrite: Callable) -> Dict[str, Builder]:
    return {"nn.modules.conv._ConvNd.reset_parameters": tag_conv_weights,
            "_calculate_fan_in_and_fan_out": module_aware_fans(rewrite)}


# draw faults -------------------------------------------------------------------------------

def fill(init, tensor, family: str, std: float, bound_factor: float, *args, **kwargs):
    if family == "normal":
        return init.normal_(tensor, 0.0, std, *args, **kwargs)
    bound = bound_factor * std
    return init.uniform_(tensor, -bound, bound, *args, **kwargs)


def xavier(family: str, variance_over_gain2: Callable[[int, int], float],
           bound_factor: float = SQRT3) -> Builder:
    """A xavier_*_ drawing ``family`` with std^2 = gain^2 * variance_over_gain2(fans)."""

    def build(init, original):
        @functools.wraps(original)
        def xavier_(tensor, gain=1.0, *args, **kwargs):
            fan_in, fan_out = init._calculate_fan_in_and_fan_out(tensor)
            std = gain * math.sqrt(variance_over_gain2(fan_in, fan_out))
            return fill(init, tensor, family, std, bound_factor, *args, **kwargs)

        return xavier_

    return build


def kaiming(family: str, bound_factor: float = SQRT3) -> Builder:
    """A kaiming_*_ as upstream, drawing ``family`` with the uniform bound bound_factor * std."""

    def build(init, original):
        @functools.wraps(original)
        def kaiming_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", *args, **kwargs):
            fan = init._calculate_correct_fan(tensor, mode)
            std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
            return fill(init, tensor, family, std, bound_factor, *args, **kwargs)

        return kaiming_

    return build


def xavier_average(fan_in: int, fan_out: int) -> float:
    return 2.0 / (fan_in + fan_out)


def xavier_fan_in_only(fan_in: int, fan_out: int) -> float:
    return 2.0 / (fan_in + fan_in)


def xavier_sum_without_2(fan_in: int, fan_out: int) -> float:
    return 1.0 / (fan_in + fan_out)


def xavier_geometric_mean(fan_in: int, fan_out: int) -> float:
    return 1.0 / math.sqrt(fan_in * fan_out)


# argument, orthogonal_ and docstring faults --------------------------------------------------

def calculate_gain_undocumented(init, original):
    """calculate_gain behind a wrapper written without functools.wraps: the values stay, the
    docstring (and with it the table and SELU's warning) is gone."""

    def calculate_gain(nonlinearity, param=None):
        return original(nonlinearity, param)

    return calculate_gain


def generator_dropped(init, original):
    """The init as upstream, called without the generator it was given: it draws from the
    global RNG (a wrapper, override handler or refactor that forgets to forward the keyword).
    Needs a torch whose init takes ``generator=`` (2.2+)."""
    import inspect

    if "generator" not in inspect.signature(original).parameters:
        raise NotApplicable(f"{original.__name__} takes no generator= in this torch")

    @functools.wraps(original)
    def replacement(*args, **kwargs):
        kwargs.pop("generator", None)
        return original(*args, **kwargs)

    return replacement


def kaiming_a_ignored(init, original):
    """kaiming_*_ as upstream except that calculate_gain gets no ``a``: leaky_relu is always
    at its default slope."""

    @functools.wraps(original)
    def kaiming_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", *args, **kwargs):
        return original(tensor, DEFAULT_SLOPE, mode, nonlinearity, *args, **kwargs)

    return kaiming_


def reduced_precision_temporary(init, original):
    """The init as upstream for float32/float64 weights; float16/bfloat16 ones are drawn into a
    float32 temporary and copied back (how PR #175046 fixed trunc_normal_ in half precision,
    applied to the gain-taking inits) by a call that forgets the arguments: the default gain,
    a and mode whatever the caller gave."""
    import torch

    reduced = tuple(dtype for dtype in (torch.float16, getattr(torch, "bfloat16", None))
                    if dtype is not None)

    @functools.wraps(original)
    def replacement(tensor, *args, **kwargs):
        if tensor.dtype not in reduced:
            return original(tensor, *args, **kwargs)
        temporary = torch.empty(tensor.shape, dtype=torch.float32, device=tensor.device)
        original(temporary)
        with torch.no_grad():
            return tensor.copy_(temporary)

    return replacement


def orthogonal_gain(rewrite: Callable[[float], float]) -> Builder:
    """orthogonal_ as upstream with its gain replaced by ``rewrite(gain)``."""

    def build(init, original):
        @functools.wraps(original)
        def orthogonal_(tensor, gain=1, *args, **kwargs):
            return original(tensor, rewrite(gain), *args, **kwargs)

        return orthogonal_

    return build


# module-default faults (issue 11): a module's reset method replaced ----------------------------
# Keys are dotted paths under torch naming the class that defines the method (see target()).

def module_reset(replacement: Callable) -> Builder:
    """A module's reset method as ``replacement(init, module)``."""

    def build(init, original):
        @functools.wraps(original)
        def reset(self):
            return replacement(init, self)

        return reset

    return build


def uniform_bias(init, module, fan: str = "fan_in") -> None:
    """nn.Linear's and _ConvNd's bias draw, U(+-1/sqrt(fan)) with ``fan`` of the weight."""
    if module.bias is not None:
        fan_in, fan_out = init._calculate_fan_in_and_fan_out(module.weight)
        init.uniform_(module.bias, -1 / math.sqrt(fan_in if fan == "fan_in" else fan_out),
                      1 / math.sqrt(fan_in if fan == "fan_in" else fan_out))


def weight_kaiming_a0(init, module):
    # the relu-style default (a=0) proposed instead of a=sqrt(5) (#57109, PR #58487)
    init.kaiming_uniform_(module.weight)
    uniform_bias(init, module)


def bias_zero(init, module):
    # zero biases, the default of other frameworks (Keras, Flax)
    init.kaiming_uniform_(module.weight, a=math.sqrt(5))
    if module.bias is not None:
        init.constant_(module.bias, 0.0)


def weight_kaiming_normal(init, module):
    init.kaiming_normal_(module.weight, a=math.sqrt(5))
    uniform_bias(init, module)


def bias_bound_fan_out(init, module):
    init.kaiming_uniform_(module.weight, a=math.sqrt(5))
    uniform_bias(init, module, "fan_out")


def channels_last_temporary(copy: str):
    """2.13.0's _ConvNd.reset_parameters with its channels_last branch broken: the temporary
    never copied back (``copy="none"``), or assigned with ``.data =`` (``"data"``), which
    drops the memory format."""

    def reset(init, module):
        import torch

        with torch.no_grad():
            if not module.weight.is_contiguous():
                temporary = torch.empty_like(module.weight,
                                             memory_format=torch.contiguous_format)
                init.kaiming_uniform_(temporary, a=math.sqrt(5))
                if copy == "data":
                    module.weight.data = temporary
            else:
                init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            uniform_bias(init, module)

    return reset


def attention_per_chunk(init, module):
    # 1.1's code: xavier_uniform_ on each (E, E) chunk, so q, k, v get 1/E, not 1/(2E)
    import torch

    if getattr(module, "_qkv_same_embed_dim", True):
        size = module.embed_dim
        with torch.no_grad():
            for chunk in range(3):
                init.xavier_uniform_(module.in_proj_weight[chunk * size:(chunk + 1) * size])
    else:
        for weight in (module.q_proj_weight, module.k_proj_weight, module.v_proj_weight):
            init.xavier_uniform_(weight)
    if module.in_proj_bias is not None:
        init.constant_(module.in_proj_bias, 0.0)
        init.constant_(module.out_proj.bias, 0.0)
    for extra in (module.bias_k, module.bias_v):
        if extra is not None:
            init.xavier_normal_(extra)


def rnn_input_weights_by_input_size(init, module):
    for name, weight in module.named_parameters():
        size = module.input_size if name.startswith("weight_ih_l0") else module.hidden_size
        init.uniform_(weight, -1 / math.sqrt(size), 1 / math.sqrt(size))


def embedding_padding_kept(init, module):
    init.normal_(module.weight)  # the padding_idx row left drawn


def transformer_without_xavier(init, module):
    return None  # a refactor that dropped the loop: the layers keep their own defaults


LINEAR_RESET = "nn.Linear.reset_parameters"
CONV_RESET = "nn.modules.conv._ConvNd.reset_parameters"


def module_mutant(name, description, tags, attribute, replacement, caught_by, select):
    return Mutant(name, description, tuple(tags), {attribute: module_reset(replacement)},
                  tuple(caught_by), select)


MODULE_DEFAULT_MUTANTS = (
    module_mutant("linear-default-a0", "nn.Linear draws kaiming_uniform_(weight) with a=0 "
                  "(variance 2/fan_in, 6x the default)", ("module-default:linear",),
                  LINEAR_RESET, weight_kaiming_a0, (MODULE_DEFAULTS, DEFAULT_STACKS),
                  "linear"),
    module_mutant("linear-default-kaiming-normal", "nn.Linear draws kaiming_normal_(weight, "
                  "a=sqrt(5)): the default variance, normal values", ("module-default:family",),
                  LINEAR_RESET, weight_kaiming_normal, (MODULE_DEFAULTS,), "linear"),
    module_mutant("linear-bias-bound-fan-out", "nn.Linear's bias bound is 1/sqrt(fan_out)",
                  ("module-default:bias",), LINEAR_RESET, bias_bound_fan_out,
                  (MODULE_DEFAULTS,), "linear"),
    module_mutant("linear-bias-zero", "nn.Linear's bias starts at 0 (other frameworks' "
                  "default)", ("module-default:bias",), LINEAR_RESET, bias_zero,
                  (MODULE_DEFAULTS, DEFAULT_STACKS), "linear"),
    module_mutant("conv-default-a0", "nn.Conv*/ConvTranspose* draw kaiming_uniform_(weight) "
                  "with a=0", ("module-default:conv",), CONV_RESET, weight_kaiming_a0,
                  (MODULE_DEFAULTS,), "conv"),
    module_mutant("conv-bias-bound-fan-out", "nn.Conv*'s bias bound is 1/sqrt(fan_out)",
                  ("module-default:bias",), CONV_RESET, bias_bound_fan_out,
                  (MODULE_DEFAULTS,), "conv"),
    module_mutant("conv-channels_last-not-copied", "_ConvNd.reset_parameters initialises the "
                  "contiguous temporary of a channels_last weight and never copies it back",
                  ("module-default:channels_last",), CONV_RESET, channels_last_temporary("none"),
                  (MODULE_DEFAULTS,), "channels_last"),
    module_mutant("conv-channels_last-format-lost", "_ConvNd.reset_parameters assigns the "
                  "temporary with weight.data =, so a channels_last weight turns contiguous",
                  ("module-default:channels_last",), CONV_RESET, channels_last_temporary("data"),
                  (MODULE_DEFAULTS,), "channels_last"),
    module_mutant("attention-in-proj-per-chunk", "nn.MultiheadAttention draws xavier_uniform_ "
                  "on each (E, E) chunk of in_proj_weight (1.1's code): variance 1/E, not "
                  "1/(2E)", ("module-default:attention",),
                  "nn.MultiheadAttention._reset_parameters", attention_per_chunk,
                  (MODULE_DEFAULTS,), "in_proj_weight"),
    module_mutant("rnn-input-weights-by-input-size", "nn.RNN/LSTM/GRU draw the input weights "
                  "U(+-1/sqrt(input_size)), not 1/sqrt(hidden_size)", ("module-default:rnn",),
                  "nn.modules.rnn.RNNBase.reset_parameters", rnn_input_weights_by_input_size,
                  (MODULE_DEFAULTS,), "weight_ih"),
    module_mutant("embedding-padding-row-drawn", "nn.Embedding leaves its padding_idx row "
                  "drawn, not zeroed", ("module-default:embedding",),
                  "nn.Embedding.reset_parameters", embedding_padding_kept, (MODULE_DEFAULTS,),
                  "embedding"),
    module_mutant("transformer-without-xavier", "nn.Transformer no longer applies "
                  "xavier_uniform_ to its matrices", ("module-default:transformer",),
                  "nn.Transformer._reset_parameters", transformer_without_xavier,
                  (MODULE_DEFAULTS,), "transformer."),
)


# The catalogue -----------------------------------------------------------------------------

def gain_mutant(nonlinearity: str, factor: float, select: str, tags=(),
                caught_by=GAIN_FILES) -> Mutant:
    return Mutant(
        name=f"gain-{nonlinearity}-x{factor}",
        description=f"calculate_gain({nonlinearity!r}) returns {factor} x the documented gain",
        tags=tuple(tags) or (f"gain:{nonlinearity}",),
        replacements={"calculate_gain": scaled_gain(nonlinearity, factor)},
        caught_by=tuple(caught_by),
        select=select,
    )


def gain_fault(name: str, description: str, tags, rewrite, caught_by, select) -> Mutant:
    return Mutant(name, description, tuple(tags), {"calculate_gain": gain_rewrite(rewrite)},
                  tuple(caught_by), select)


# -k expressions: "relu" alone would also select leaky_relu; the layer ids of
# test_init_functions.py contain "linear", "conv1d" and "conv2d".
CATALOGUE = (
    gain_mutant("tanh", 1.05, "tanh"),
    gain_mutant("relu", 1.05, "relu and not leaky"),
    gain_mutant("relu", 0.95, "relu and not leaky"),
    gain_mutant("sigmoid", 1.05, "sigmoid"),
    gain_mutant("selu", 1.05, "selu"),
    gain_mutant("leaky_relu", 1.05, "leaky_relu", tags=("gain:leaky_relu-default",)),
    gain_mutant("linear", 1.05, "linear", tags=("gain:linear",)),
    # The conv names: the value file and the conv stacks (whose xavier_* and kaiming_* call
    # calculate_gain with the layer's own name); "conv2d" is no substring of conv_transpose2d.
    *(gain_mutant(name, 1.05, name, caught_by=CONV_GAIN_FILES)
      for name in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                   "conv_transpose3d")),
    Mutant("gain-tanh-rounded", "calculate_gain('tanh') returns 1.6667, 5/3 rounded",
           ("gain:tanh",), {"calculate_gain": replaced_gain("tanh", round(5 / 3, 4))},
           (VALUES, DOCSTRING), "tanh"),
    Mutant("gain-selu-1", "calculate_gain('selu') returns 1, the SNN paper's LeCun gain "
           "(the change #54055 asks for)", ("gain:selu",),
           {"calculate_gain": replaced_gain("selu", 1.0)}, GAIN_FILES, "selu"),
    gain_fault("leaky_relu-default-slope-0.2",
               "calculate_gain('leaky_relu') defaults to slope 0.2 (TensorFlow's) not "
               f"{DEFAULT_SLOPE}",
               ("gain:leaky_relu-default",), leaky_default_slope(0.2), (VALUES, DOCSTRING),
               "leaky_relu"),
    gain_fault("selu-missing", "calculate_gain('selu') raises 'Unsupported nonlinearity "
               "selu', as torch < 1.8 does", ("selu-missing",), selu_unsupported, GAIN_FILES,
               "selu"),
    gain_fault("leaky_relu-param-ignored", "calculate_gain('leaky_relu', param) ignores "
               f"param: always slope {DEFAULT_SLOPE}", ("leaky-param-ignored",),
               leaky_param_ignored, GAIN_FILES, "leaky"),
    gain_fault("leaky_relu-bool-accepted", "calculate_gain('leaky_relu', True) is slope 1 "
               "(the bool check before the int check dropped)", ("leaky-bool-accepted",),
               leaky_bool_accepted, (VALUES,), "rejects_non_numbers"),
    gain_fault("leaky_relu-slope-not-squared", "calculate_gain('leaky_relu', s) returns "
               "sqrt(2 / (1 + s)), the square dropped", ("leaky-param-ignored",),
               leaky_slope_not_squared, GAIN_FILES, "leaky"),
    gain_fault("gain-linear-returns-float", "calculate_gain returns 1.0, a float, for the "
               "linear names and sigmoid (as the 2.x '-> float' annotation suggests)",
               ("gain-type",), linear_gain_float, (VALUES,), "value_and_type"),
    gain_fault("error-message-quoted", "'Unsupported nonlinearity gelu' becomes "
               "\"Unsupported nonlinearity 'gelu'\"", ("error-message",), error_reworded,
               (VALUES,), "unsupported or case_sensitive"),
    gain_fault("error-key-error", "an unknown name raises KeyError, not ValueError "
               "(a table-driven calculate_gain)", ("error-message",), error_key_error,
               (VALUES,), "unsupported"),
    gain_fault("names-case-insensitive", "calculate_gain('ReLU') is accepted (the name "
               "lower-cased first)", ("names",), names_case_insensitive, (VALUES,),
               "case_sensitive"),
    Mutant("docstring-selu-row-missing", "calculate_gain's docstring table has no SELU row",
           ("docstring-row",), {"calculate_gain": docstring_without_row("SELU")}, (DOCSTRING,),
           "selu"),
    Mutant("docstring-tanh-row-missing", "calculate_gain's docstring table has no Tanh row",
           ("docstring-row",), {"calculate_gain": docstring_without_row("Tanh")}, (DOCSTRING,),
           "tanh"),
    Mutant("kaiming-mode-swapped",
           "kaiming_* use fan_out for mode='fan_in' and fan_in for mode='fan_out'",
           ("kaiming-mode",), {"_calculate_correct_fan": fan_rewrite(mode_swapped)}, (INIT,),
           "kaiming and relu"),
    Mutant("kaiming-mode-ignored", "kaiming_* use fan_in whatever the mode",
           ("kaiming-mode",), {"_calculate_correct_fan": fan_rewrite(mode_ignored)}, (INIT,),
           "kaiming and fan_out and relu"),
    Mutant("kaiming-conv-fan-no-receptive-field",
           "kaiming_* take the fan of a conv weight as its channels, forgetting the kernel size",
           ("kaiming-conv-fan",),
           {"_calculate_correct_fan": fan_rewrite(fan_without_receptive_field)}, (INIT,),
           "kaiming and conv and relu"),
    Mutant("fans-last-kernel-dim-only", "fans of conv weights count the last kernel "
           "dimension only (3 for a 3x3 kernel, code written for conv1d)",
           ("kaiming-conv-fan", "xavier-average"),
           {"_calculate_fan_in_and_fan_out": fans_last_kernel_dim_only}, (INIT,),
           "conv2d-32to64-k3 and (xavier or relu)"),
    # conv fan faults (issue 12): caught where the conv modes are measured
    Mutant("fans-first-kernel-dim-only", "fans of conv weights count the first kernel "
           "dimension only (3 for a 3x2 kernel)", ("conv-fan:receptive-field",),
           {"_calculate_fan_in_and_fan_out": fans_first_kernel_dim_only}, (INIT, CONV_MODES),
           "conv2d or conv3d or conv_transpose2d or conv_transpose3d"),
    Mutant("fans-3d-kernel-two-dims", "fans of 3-D conv weights count two kernel dimensions "
           "(code written for conv2d)", ("conv-fan:receptive-field",),
           {"_calculate_fan_in_and_fan_out": fans_two_kernel_dims}, (CONV_MODES,), "3d"),
    Mutant("fan-out-depthwise-guess", "a weight with one input channel per group is taken as "
           "depthwise with multiplier 1: fan_out = the receptive field (PR #24315's detection)",
           ("conv-fan:groups",), {"_calculate_fan_in_and_fan_out": fan_out_depthwise_guess},
           (CONV_MODES,), "depthwise"),
    Mutant("fan-out-divided-by-groups", "fan_out of a grouped conv divided by groups, each "
           "input's count (#23854 'fixed' in a module-aware fan helper)", ("conv-fan:groups",),
           module_fan_fault(fan_out_over_groups), (CONV_MODES,), "grouped or depthwise"),
    Mutant("fan-in-groups-ignored", "a module-aware fan helper counts every input channel "
           "in fan_in, ignoring groups", ("conv-fan:groups",),
           module_fan_fault(fan_in_groups_ignored), (CONV_MODES,), "grouped or depthwise"),
    Mutant("conv-transpose-fans-swapped", "ConvTranspose's fans read from the other "
           "dimensions: fan_in the forward count (#18182 'fixed' silently)",
           ("conv-fan:transposed",), module_fan_fault(transposed_fans_swapped),
           (CONV_MODES,), "conv_transpose"),
    Mutant("xavier-fan-in-only", "xavier_* use std = gain * sqrt(2 / (fan_in + fan_in))",
           ("xavier-fan-in-only",),
           {"xavier_normal_": xavier("normal", xavier_fan_in_only),
            "xavier_uniform_": xavier("uniform", xavier_fan_in_only)}, (INIT,), "xavier"),
    Mutant("xavier-sum-without-2", "xavier_* use std = gain * sqrt(1 / (fan_in + fan_out))",
           ("xavier-average",),
           {"xavier_normal_": xavier("normal", xavier_sum_without_2),
            "xavier_uniform_": xavier("uniform", xavier_sum_without_2)}, (INIT, STABILITY),
           "xavier"),
    Mutant("xavier-geometric-mean", "xavier_* average the fans geometrically: "
           "std = gain / (fan_in * fan_out) ** (1 / 4)", ("xavier-average",),
           {"xavier_normal_": xavier("normal", xavier_geometric_mean),
            "xavier_uniform_": xavier("uniform", xavier_geometric_mean)}, (INIT,), "xavier"),
    Mutant("uniform-bound-no-sqrt3", "xavier_uniform_ and kaiming_uniform_ draw from "
           "U(-std, std)", ("uniform-bound",),
           {"xavier_uniform_": xavier("uniform", xavier_average, bound_factor=1.0),
            "kaiming_uniform_": kaiming("uniform", bound_factor=1.0)}, (INIT, STABILITY),
           "uniform"),
    Mutant("kaiming-normal-draws-uniform", "kaiming_normal_ draws uniform values of the "
           "right variance", ("family-swap",), {"kaiming_normal_": kaiming("uniform")},
           (INIT,), "kaiming and normal and relu"),
    Mutant("xavier-uniform-draws-normal", "xavier_uniform_ draws normal values of the right "
           "variance", ("family-swap",),
           {"xavier_uniform_": xavier("normal", xavier_average)}, (INIT,),
           "xavier and uniform"),
    # argument, orthogonal_ and docstring faults
    Mutant("calculate_gain-docstring-lost", "calculate_gain wrapped by a decorator without "
           "functools.wraps: same values, no docstring", ("docstring-lost",),
           {"calculate_gain": calculate_gain_undocumented}, (DOCSTRING,), ""),
    Mutant("kaiming_normal_-generator-dropped", "kaiming_normal_ draws from the global RNG "
           "whatever generator= says (2.2+)", ("generator-ignored",),
           {"kaiming_normal_": generator_dropped}, (ARGUMENTS,), "generator and kaiming_normal"),
    Mutant("orthogonal_-generator-dropped", "orthogonal_ draws from the global RNG whatever "
           "generator= says (2.2+)", ("generator-ignored",),
           {"orthogonal_": generator_dropped}, (ARGUMENTS,), "generator and orthogonal"),
    Mutant("kaiming-a-ignored", "kaiming_* call calculate_gain without a: leaky_relu always "
           f"at slope {DEFAULT_SLOPE}", ("kaiming-a-ignored",),
           {"kaiming_normal_": kaiming_a_ignored, "kaiming_uniform_": kaiming_a_ignored},
           (INIT,), "kaiming and leaky_relu"),
    Mutant("reduced-precision-arguments-dropped", "xavier_* and kaiming_* draw float16 and "
           "bfloat16 weights through a float32 temporary initialised without the caller's "
           "gain, a and mode", ("reduced-precision",),
           {name: reduced_precision_temporary for name in (
               "xavier_normal_", "xavier_uniform_", "kaiming_normal_", "kaiming_uniform_")},
           (INIT,), "reduced_precision"),
    Mutant("orthogonal_-gain-ignored", "orthogonal_ returns an orthonormal matrix whatever "
           "its gain", ("orthogonal-gain",), {"orthogonal_": orthogonal_gain(lambda gain: 1)},
           (ORTHOGONAL, STABILITY), "orthogonal and relu and not leaky"),
    Mutant("orthogonal_-gain-squared", "orthogonal_ multiplies by gain ** 2",
           ("orthogonal-gain",), {"orthogonal_": orthogonal_gain(lambda gain: gain ** 2)},
           (ORTHOGONAL, STABILITY), "orthogonal and relu and not leaky"),
) + MODULE_DEFAULT_MUTANTS
MUTANTS = {mutant.name: mutant for mutant in CATALOGUE}
assert len(MUTANTS) == len(CATALOGUE), "mutant names must be unique"


# The pytest plugin -------------------------------------------------------------------------

def pytest_addoption(parser):
    parser.getgroup("gainkit", "gainkit conformance suite").addoption(
        "--gainkit-mutant", metavar="NAME", default=None, choices=sorted(MUTANTS),
        help="run against torch.nn.init with this fault installed (gainkit mutate --list "
             "describes them)")


def pytest_configure(config):
    name = config.getoption("gainkit_mutant")
    if name is None:
        return
    import pytest
    from torch.nn import init

    try:
        config._gainkit_mutant = (MUTANTS[name], MUTANTS[name].apply(init))
    except NotApplicable as error:
        raise pytest.UsageError(f"mutant {name} does not apply to this torch: {error}") from None


def pytest_unconfigure(config):
    applied = getattr(config, "_gainkit_mutant", None)
    if applied is not None:
        from torch.nn import init

        restore(init, applied[1])


def pytest_report_header(config):
    applied = getattr(config, "_gainkit_mutant", None)
    if applied is not None:
        return f"gainkit mutant installed: {applied[0].name} ({applied[0].description})"
    return None
