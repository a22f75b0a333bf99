"""A tiny random Llama gives the same logits and gradients with attn_implementation="fport" (flashport) as with
"sdpa"."""

import copy

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import flashport.transformers  # noqa: E402
from devices import torch_devices  # noqa: E402


def _tiny_llama(device, dtype):
    # head_dim 32: the smallest the CUDA kernels are built for.
    config = transformers.LlamaConfig(vocab_size=97, hidden_size=128, intermediate_size=192, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                      attn_implementation="sdpa")
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    return model.to(device, dtype).train()


def _use(model, name):
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(name)
    else:  # transformers before set_attn_implementation existed
        model.config._attn_implementation = name


def _run(model, ids):
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), ids.flatten())
    loss.backward()
    return logits.detach().float(), {n: p.grad.detach().float() for n, p in model.named_parameters()}


@pytest.mark.parametrize("device", torch_devices())
def test_llama_matches_sdpa(device):
    name = flashport.transformers.register()
    calls = []

    def counting(*args, **kwargs):  # proves the model really ran flashport, not a fallback
        calls.append(1)
        return flashport.transformers.attention_forward(*args, **kwargs)

    transformers.AttentionInterface.register(name, counting)
    # float32 on the CPU compares the arithmetic closely; on the GPU, the half type flashport's kernels run.
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    tol, grad_tol = (1e-4, 1e-3) if dtype == torch.float32 else (3e-2, 1e-1)
    reference_model = _tiny_llama(device, dtype)
    model = copy.deepcopy(reference_model)
    _use(model, name)
    assert model.config._attn_implementation == name
    ids = torch.randint(0, 97, (2, 24), generator=torch.Generator().manual_seed(1)).to(device)

    want_logits, want_grads = _run(reference_model, ids)
    got_logits, got_grads = _run(model, ids)
    assert len(calls) == 2  # one call per layer
    scale = want_logits.abs().max().item()
    assert (got_logits - want_logits).abs().max().item() <= tol * scale
    for pname, want in want_grads.items():
        got = got_grads[pname]
        err = (got - want).norm().item() / max(want.norm().item(), 1e-12)
        assert err <= grad_tol, f"gradient of {pname}: relative error {err:.3g}"


@pytest.mark.parametrize("device", torch_devices())
def test_padding_is_refused_with_a_clear_error(device):
    name = flashport.transformers.register()
    model = _tiny_llama(device, torch.float32 if device == "cpu" else torch.bfloat16)
    _use(model, name)
    ids = torch.randint(0, 97, (2, 8)).to(device)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    with pytest.raises(NotImplementedError, match="padding"):
        model(input_ids=ids, attention_mask=mask)


def test_names_with_flash_are_refused():
    # transformers would take such a name for a FlashAttention package and fail to import one.
    with pytest.raises(ValueError, match="contains 'flash'"):
        flashport.transformers.register("flashport")
