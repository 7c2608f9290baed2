//! Device buffers from gpu-allocator, pooled by size so that a training loop which frees and
//! re-creates tensors of the same shapes stops allocating after its first step.

use super::context::{Context, Inner};
use super::VkError;
use ash::vk;
use gpu_allocator::vulkan::{Allocation, AllocationCreateDesc, AllocationScheme, Allocator};
use gpu_allocator::MemoryLocation;
use std::collections::HashMap;
use std::rc::Rc;

/// Buffers are handed out in multiples of this, so shapes that differ by a few elements share
/// a size class.
const GRANULE: u64 = 256;

pub(crate) struct RawBuffer {
    pub(crate) buffer: vk::Buffer,
    allocation: Allocation,
    bytes: u64,
}

/// Free buffers by size class.
#[derive(Default)]
pub(crate) struct Pool {
    free: HashMap<u64, Vec<RawBuffer>>,
}

impl Pool {
    /// # Safety
    /// No command buffer may still use any pooled buffer.
    pub(crate) unsafe fn destroy(&mut self, device: &ash::Device, allocator: &mut Allocator) {
        for (_, list) in self.free.drain() {
            for raw in list {
                // SAFETY: per the function's contract, the buffer is idle.
                unsafe { device.destroy_buffer(raw.buffer, None) };
                let _ = allocator.free(raw.allocation);
            }
        }
    }
}

struct BufferInner {
    ctx: Context,
    raw: Option<RawBuffer>,
}

impl Drop for BufferInner {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            self.ctx.inner.stats.borrow_mut().buffer_returned(raw.bytes);
            let mut pool = self.ctx.inner.pool.borrow_mut();
            pool.free.entry(raw.bytes).or_default().push(raw);
        }
    }
}

/// A storage buffer on the device. Cloning shares it; when the last clone is gone it returns
/// to the context's pool. Recorded graphs hold clones of what they use, so a buffer cannot be
/// recycled while a graph may still touch it.
#[derive(Clone)]
pub struct Buffer {
    inner: Rc<BufferInner>,
}

impl Buffer {
    /// A buffer of at least `bytes` bytes; its contents are whatever was there before.
    pub fn new(ctx: &Context, bytes: u64) -> Result<Self, VkError> {
        let class = Buffer::size_class(bytes);
        let reused = ctx
            .inner
            .pool
            .borrow_mut()
            .free
            .get_mut(&class)
            .and_then(|l| l.pop());
        let raw = match reused {
            Some(raw) => raw,
            None => create_raw(&ctx.inner, class)?,
        };
        ctx.inner.stats.borrow_mut().buffer_taken(class);
        Ok(Buffer {
            inner: Rc::new(BufferInner {
                ctx: ctx.clone(),
                raw: Some(raw),
            }),
        })
    }

    /// The size a request for `bytes` is rounded up to.
    pub fn size_class(bytes: u64) -> u64 {
        bytes.max(1).div_ceil(GRANULE) * GRANULE
    }

    fn raw(&self) -> &RawBuffer {
        self.inner
            .raw
            .as_ref()
            .expect("buffer is live until dropped")
    }

    pub(crate) fn handle(&self) -> vk::Buffer {
        self.raw().buffer
    }

    /// Bytes usable (the size class, at least what was asked).
    pub fn bytes(&self) -> u64 {
        self.raw().bytes
    }

    /// A key that identifies the memory for hazard tracking.
    pub(crate) fn key(&self) -> u64 {
        use ash::vk::Handle;
        self.handle().as_raw()
    }

    /// Copies `data` to the start of the buffer. The device must not be using the buffer.
    pub fn write(&self, data: &[u8]) -> Result<(), VkError> {
        assert!(
            data.len() as u64 <= self.bytes(),
            "write past the end of a buffer"
        );
        if let Some(ptr) = self.host_pointer() {
            // SAFETY: the allocation is host-visible and coherent, at least `bytes` long, and
            // nothing on the device runs (every submission is waited for before returning).
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr, data.len()) };
            return Ok(());
        }
        let ctx = &self.inner.ctx;
        let staging = Staging::new(ctx, data.len() as u64, MemoryLocation::CpuToGpu)?;
        staging.bytes_mut()[..data.len()].copy_from_slice(data);
        copy_buffer(ctx, staging.buffer, self.handle(), data.len() as u64)
    }

    /// Copies the first `len` bytes of the buffer to the host.
    pub fn read(&self, len: usize) -> Result<Vec<u8>, VkError> {
        assert!(len as u64 <= self.bytes(), "read past the end of a buffer");
        if let Some(ptr) = self.host_pointer() {
            let mut out = vec![0u8; len];
            // SAFETY: as in `write`; every graph ends with a barrier making shader writes visible
            // to the host, and its fence has been waited for.
            unsafe { std::ptr::copy_nonoverlapping(ptr, out.as_mut_ptr(), len) };
            return Ok(out);
        }
        let ctx = &self.inner.ctx;
        let staging = Staging::new(ctx, len as u64, MemoryLocation::GpuToCpu)?;
        copy_buffer(ctx, self.handle(), staging.buffer, len as u64)?;
        Ok(staging.bytes_mut()[..len].to_vec())
    }

    fn host_pointer(&self) -> Option<*mut u8> {
        let allocation = &self.raw().allocation;
        let coherent = allocation.memory_properties().contains(
            vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT,
        );
        allocation
            .mapped_ptr()
            .filter(|_| coherent)
            .map(|p| p.as_ptr() as *mut u8)
    }
}

fn create_raw(inner: &Inner, bytes: u64) -> Result<RawBuffer, VkError> {
    let usage = vk::BufferUsageFlags::STORAGE_BUFFER
        | vk::BufferUsageFlags::STORAGE_TEXEL_BUFFER
        | vk::BufferUsageFlags::TRANSFER_SRC
        | vk::BufferUsageFlags::TRANSFER_DST;
    let (buffer, allocation) = allocate(inner, bytes, usage, MemoryLocation::GpuOnly)?;
    let mut stats = inner.stats.borrow_mut();
    stats.buffers_created += 1;
    stats.bytes_created += bytes;
    Ok(RawBuffer {
        buffer,
        allocation,
        bytes,
    })
}

fn allocate(
    inner: &Inner,
    bytes: u64,
    usage: vk::BufferUsageFlags,
    location: MemoryLocation,
) -> Result<(vk::Buffer, Allocation), VkError> {
    let info = vk::BufferCreateInfo::default()
        .size(bytes)
        .usage(usage)
        .sharing_mode(vk::SharingMode::EXCLUSIVE);
    let device = &inner.device;
    // SAFETY: valid device and create info.
    let buffer = unsafe { device.create_buffer(&info, None) }.map_err(VkError::Vulkan)?;
    // SAFETY: `buffer` was just created on this device.
    let requirements = unsafe { device.get_buffer_memory_requirements(buffer) };
    let mut guard = inner.allocator.borrow_mut();
    let allocator = guard
        .as_mut()
        .expect("allocator lives as long as the context");
    let allocation = match allocator.allocate(&AllocationCreateDesc {
        name: "vkgan",
        requirements,
        location,
        linear: true,
        allocation_scheme: AllocationScheme::GpuAllocatorManaged,
    }) {
        Ok(a) => a,
        Err(e) => {
            // SAFETY: the buffer is unbound and unused.
            unsafe { device.destroy_buffer(buffer, None) };
            return Err(VkError::Allocation(format!("{bytes} bytes: {e}")));
        }
    };
    // SAFETY: the allocation satisfies the buffer's requirements and is not bound elsewhere.
    unsafe { device.bind_buffer_memory(buffer, allocation.memory(), allocation.offset()) }
        .map_err(VkError::Vulkan)?;
    inner.stats.borrow_mut().buffer_created(bytes);
    Ok((buffer, allocation))
}

/// A host-visible buffer for one transfer, freed when dropped.
struct Staging<'a> {
    ctx: &'a Context,
    buffer: vk::Buffer,
    bytes: u64,
    allocation: Option<Allocation>,
}

impl<'a> Staging<'a> {
    fn new(ctx: &'a Context, bytes: u64, location: MemoryLocation) -> Result<Self, VkError> {
        let usage = vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST;
        let bytes = bytes.max(4);
        let (buffer, allocation) = allocate(&ctx.inner, bytes, usage, location)?;
        Ok(Staging {
            ctx,
            buffer,
            bytes,
            allocation: Some(allocation),
        })
    }

    #[allow(clippy::mut_from_ref)]
    fn bytes_mut(&self) -> &mut [u8] {
        let allocation = self.allocation.as_ref().expect("live staging buffer");
        let ptr = allocation.mapped_ptr().expect("staging memory is mapped");
        // SAFETY: gpu-allocator maps CpuToGpu and GpuToCpu memory for the allocation's lifetime;
        // the only user of this memory is this struct, and no transfer is in flight when the
        // slice is made (copies are waited for).
        unsafe {
            std::slice::from_raw_parts_mut(ptr.as_ptr() as *mut u8, allocation.size() as usize)
        }
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        // SAFETY: the copy that used the buffer has completed (`copy_buffer` waits).
        unsafe { self.ctx.inner.device.destroy_buffer(self.buffer, None) };
        self.ctx
            .inner
            .stats
            .borrow_mut()
            .buffer_destroyed(self.bytes);
        if let (Some(a), Some(alloc)) = (
            self.allocation.take(),
            self.ctx.inner.allocator.borrow_mut().as_mut(),
        ) {
            let _ = alloc.free(a);
        }
    }
}

/// One synchronous buffer-to-buffer copy, ordered after everything submitted before it.
fn copy_buffer(ctx: &Context, src: vk::Buffer, dst: vk::Buffer, bytes: u64) -> Result<(), VkError> {
    super::recorder::one_shot(ctx, |device, cmd| {
        let region = [vk::BufferCopy::default().size(bytes)];
        // SAFETY: both buffers are live, at least `bytes` long, and have transfer usage.
        unsafe { device.cmd_copy_buffer(cmd, src, dst, &region) };
    })
}
