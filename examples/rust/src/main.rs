//! flashport from Rust: forward and backward through the C ABI, declared by hand from
//! include/flashport/flashport.h (ABI version 1).

use std::ffi::{c_void, CStr};
use std::os::raw::c_char; // not std::ffi::c_char: that needs Rust 1.64, Debian 12 ships 1.63
use std::ptr;

#[repr(C)]
#[derive(Clone, Copy)]
struct Tensor {
    data: *mut c_void,
    dtype: i32,
    device_type: i32,
    device_id: i32,
    reserved: i32,
    shape: [i64; 4],
    strides: [i64; 4],
}

/// The fields that flashport_forward_args and flashport_backward_args share, in the header's order, after their
/// tensors. Nested as one #[repr(C)] struct the layout is the header's flat one: the struct starts at an 8-byte
/// boundary (it follows size_t and tensors), has the fields' own alignment, and its size (64) has no tail padding.
#[repr(C)]
struct Options {
    softmax_scale: f32,
    softcap: f32,
    causal: i32,
    mask_alignment: i32,
    window_left: i64,
    window_right: i64,
    stream: *mut c_void,
    workspace: *mut c_void,
    workspace_size: usize,
    backend: *const c_char,
}

impl Options {
    /// The defaults of flashport_*_args_init(), with `causal` set.
    fn defaults(causal: bool) -> Options {
        Options {
            softmax_scale: 0.0,
            softcap: 0.0,
            causal: causal as i32,
            mask_alignment: 0,
            window_left: -1,
            window_right: -1,
            stream: ptr::null_mut(),
            workspace: ptr::null_mut(),
            workspace_size: 0,
            backend: ptr::null(),
        }
    }
}

#[repr(C)]
struct ForwardArgs {
    struct_size: usize,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    options: Options,
}

#[repr(C)]
struct BackwardArgs {
    struct_size: usize,
    dout: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    dq: Tensor,
    dk: Tensor,
    dv: Tensor,
    options: Options,
    deterministic: i32,
}

const STATUS_OK: i32 = 0;
const DTYPE_F32: i32 = 1;
const DEVICE_CPU: i32 = 1;

#[link(name = "flashport")]
extern "C" {
    fn flashport_version_string() -> *const c_char;
    fn flashport_abi_version() -> u32;
    fn flashport_status_string(status: i32) -> *const c_char;
    fn flashport_last_error() -> *const c_char;
    fn flashport_forward(args: *const ForwardArgs) -> i32;
    fn flashport_backward(args: *const BackwardArgs) -> i32;
}

fn text(s: *const c_char) -> String {
    // SAFETY: the library returns static or thread-local NUL-terminated strings, never NULL.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}

fn check(status: i32, what: &str) -> Result<(), String> {
    if status == STATUS_OK {
        return Ok(());
    }
    // SAFETY: plain calls into the library; the message belongs to this thread's last call.
    let (name, message) = unsafe { (text(flashport_status_string(status)), text(flashport_last_error())) };
    Err(format!("{what} failed: {name}: {message}"))
}

/// A contiguous [batch, seqlen, heads, head_dim] f32 tensor on the CPU over `data`.
fn tensor(data: &mut [f32], shape: [i64; 4]) -> Tensor {
    assert_eq!(data.len() as i64, shape.iter().product::<i64>());
    Tensor {
        data: data.as_mut_ptr().cast(),
        dtype: DTYPE_F32,
        device_type: DEVICE_CPU,
        device_id: 0,
        reserved: 0,
        shape,
        strides: [shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1],
    }
}

fn random(n: usize, state: &mut u32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            (*state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

fn main() -> Result<(), String> {
    let (b, s, h, d) = (2i64, 16i64, 4i64, 32i64);
    let n = (b * s * h * d) as usize;
    let mut seed = 7;
    let (mut q, mut k, mut v, mut dout) = (random(n, &mut seed), random(n, &mut seed), random(n, &mut seed),
                                           random(n, &mut seed));
    let (mut out, mut dq, mut dk, mut dv) = (vec![0f32; n], vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    let mut lse = vec![0f32; (b * h * s) as usize];
    let shape = [b, s, h, d];
    // lse is F32 {batch, heads, seqlen, 1}: heads before seqlen, as FlashAttention stores it.
    let lse_t = tensor(&mut lse, [b, h, s, 1]);

    // SAFETY: version queries take no arguments.
    println!("flashport {} (ABI {}) from Rust", text(unsafe { flashport_version_string() }),
             unsafe { flashport_abi_version() });

    // Every field set explicitly with the defaults of flashport_forward_args_init(): our struct_size is the size
    // of the struct this program was written against, which the library accepts from older and newer callers.
    // Options nests the shared fields without changing the layout (see Options): 10 fields, 64 bytes.
    assert_eq!(std::mem::size_of::<Options>(), 64);
    let fwd = ForwardArgs {
        struct_size: std::mem::size_of::<ForwardArgs>(),
        q: tensor(&mut q, shape),
        k: tensor(&mut k, shape),
        v: tensor(&mut v, shape),
        out: tensor(&mut out, shape),
        lse: lse_t,
        options: Options::defaults(true),
    };
    // SAFETY: every tensor points at a live Vec of the right length for the duration of the call.
    check(unsafe { flashport_forward(&fwd) }, "flashport_forward")?;

    let bwd = BackwardArgs {
        struct_size: std::mem::size_of::<BackwardArgs>(),
        dout: tensor(&mut dout, shape),
        q: fwd.q,
        k: fwd.k,
        v: fwd.v,
        out: fwd.out,
        lse: fwd.lse,
        dq: tensor(&mut dq, shape),
        dk: tensor(&mut dk, shape),
        dv: tensor(&mut dv, shape),
        options: Options::defaults(true),
        deterministic: 1,
    };
    // SAFETY: as above; outputs do not overlap inputs.
    check(unsafe { flashport_backward(&bwd) }, "flashport_backward")?;

    // Causal: query row 0 sees only key 0, so its output is v[0] (no GQA here: heads_q == heads_kv).
    let row0_ok = (0..(h * d) as usize).all(|i| (out[i] - v[i]).abs() < 1e-6);
    // Rows of probabilities sum to 1: summed over keys, dv equals dout summed over queries.
    let (s, hd) = (s as usize, (h * d) as usize);
    let sums_ok = (0..b as usize * hd).all(|c| {
        let (bi, rest) = (c / hd, c % hd);
        let column = |x: &[f32]| -> f64 { (0..s).map(|j| x[(bi * s + j) * hd + rest] as f64).sum() };
        (column(&dv) - column(&dout)).abs() < 1e-4
    });
    println!("out[0,0,0,0..3] = {:.5} {:.5} {:.5} {:.5}; |dq|_1 = {:.4}", out[0], out[1], out[2], out[3],
             dq.iter().map(|x| x.abs() as f64).sum::<f64>());
    if row0_ok && sums_ok {
        println!("forward and backward OK");
        Ok(())
    } else {
        Err(format!("checks failed: first row {row0_ok}, dv sums {sums_ok}"))
    }
}
