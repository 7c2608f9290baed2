//! Tensors: a shape and the memory that holds it, on the device (`Tensor`) or on the host in
//! f64 for the CPU references (`CpuTensor`). Row-major (NCHW for images), float32 on the device.

use crate::vk::{Buffer, Context, VkError};

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// A float32 tensor in device memory. Cloning shares the memory.
#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    buffer: Buffer,
}

impl Tensor {
    /// Uninitialised contents.
    pub fn uninit(ctx: &Context, shape: &[usize]) -> Result<Self, VkError> {
        Ok(Tensor {
            shape: shape.to_vec(),
            buffer: Buffer::new(ctx, (numel(shape) * 4) as u64)?,
        })
    }

    /// A tensor over existing memory of at least `numel(shape) * 4` bytes.
    pub fn from_buffer(shape: &[usize], buffer: Buffer) -> Self {
        assert!(
            buffer.bytes() >= (numel(shape) * 4) as u64,
            "buffer too small for {shape:?}"
        );
        Tensor {
            shape: shape.to_vec(),
            buffer,
        }
    }

    pub fn from_f32(ctx: &Context, shape: &[usize], data: &[f32]) -> Result<Self, VkError> {
        assert_eq!(
            numel(shape),
            data.len(),
            "data does not fill shape {shape:?}"
        );
        let t = Tensor::uninit(ctx, shape)?;
        t.buffer.write_f32(data)?;
        Ok(t)
    }

    pub fn zeros(ctx: &Context, shape: &[usize]) -> Result<Self, VkError> {
        Tensor::from_f32(ctx, shape, &vec![0.0; numel(shape)])
    }

    pub fn from_cpu(ctx: &Context, t: &CpuTensor) -> Result<Self, VkError> {
        Tensor::from_f32(ctx, &t.shape, &t.to_f32())
    }

    /// The same memory seen with another shape of the same size.
    pub fn reshaped(&self, shape: &[usize]) -> Tensor {
        assert_eq!(
            numel(shape),
            self.numel(),
            "reshape {:?} -> {shape:?}",
            self.shape
        );
        Tensor {
            shape: shape.to_vec(),
            buffer: self.buffer.clone(),
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }

    /// Overwrites the contents (the device must be idle).
    pub fn write(&self, data: &[f32]) -> Result<(), VkError> {
        assert_eq!(
            data.len(),
            self.numel(),
            "data does not fill shape {:?}",
            self.shape
        );
        self.buffer.write_f32(data)
    }

    pub fn to_vec(&self) -> Result<Vec<f32>, VkError> {
        self.buffer.read_f32(self.numel())
    }
}

/// A tensor on the host in f64: what the CPU references compute with, so that finite
/// differences of them are accurate.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl CpuTensor {
    pub fn new(shape: &[usize], data: Vec<f64>) -> Self {
        assert_eq!(
            numel(shape),
            data.len(),
            "data does not fill shape {shape:?}"
        );
        CpuTensor {
            shape: shape.to_vec(),
            data,
        }
    }

    pub fn full(shape: &[usize], value: f64) -> Self {
        CpuTensor::new(shape, vec![value; numel(shape)])
    }

    pub fn from_f32(shape: &[usize], data: &[f32]) -> Self {
        CpuTensor::new(shape, data.iter().map(|&v| v as f64).collect())
    }

    pub fn to_f32(&self) -> Vec<f32> {
        self.data.iter().map(|&v| v as f32).collect()
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Applies `f` to every element.
    pub fn map(&self, f: impl Fn(f64) -> f64) -> CpuTensor {
        CpuTensor::new(&self.shape, self.data.iter().map(|&v| f(v)).collect())
    }
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Offset of row-major flat index `i` of a tensor with `dims`, read through `strides` (which
/// may be 0 along broadcast dimensions).
pub fn strided_offset(mut i: usize, dims: &[usize], strides: &[usize]) -> usize {
    let mut o = 0;
    for d in (0..dims.len()).rev() {
        o += (i % dims[d]) * strides[d];
        i /= dims[d];
    }
    o
}
