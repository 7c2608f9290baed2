// Tensor I/O with two build-time variants of every kernel that includes this (build.rs builds
// both; the recorder picks one per dispatch):
// - texel (the default): r32f / rgba32f storage texel buffers. lavapipe moves texels with
//   straight-line vector code and storage-buffer elements lane by lane, so this is the fast
//   path on CPU drivers; but a view holds at most maxTexelBufferElements texels (65536, 256 KB
//   of r32f, on many mobile GPUs and SwiftShader);
// - storage (IO_STORAGE defined): std430 storage buffers, bounded only by
//   maxStorageBufferRange.
// Declarations: IN_ / OUT_ / INOUT_ R32F (one float per element) or RGBA32F (a vec4), then
// LOAD / STORE of a float and LOAD4 / STORE4 of a vec4, indexed in elements of the binding.
#ifndef IO_GLSL
#define IO_GLSL

#ifdef IO_STORAGE

#define IN_R32F(b, name) layout(std430, binding = b) readonly buffer name##_io { float name[]; }
#define OUT_R32F(b, name) layout(std430, binding = b) writeonly buffer name##_io { float name[]; }
#define INOUT_R32F(b, name) layout(std430, binding = b) buffer name##_io { float name[]; }
#define IN_RGBA32F(b, name) layout(std430, binding = b) readonly buffer name##_io { vec4 name[]; }
#define OUT_RGBA32F(b, name) layout(std430, binding = b) writeonly buffer name##_io { vec4 name[]; }
#define INOUT_RGBA32F(b, name) layout(std430, binding = b) buffer name##_io { vec4 name[]; }
#define LOAD(name, i) name[i]
#define LOAD4(name, i) name[i]
#define STORE(name, i, v) name[i] = (v)
#define STORE4(name, i, v) name[i] = (v)

#else

#define IN_R32F(b, name) layout(binding = b, r32f) readonly uniform imageBuffer name
#define OUT_R32F(b, name) layout(binding = b, r32f) writeonly uniform imageBuffer name
#define INOUT_R32F(b, name) layout(binding = b, r32f) uniform imageBuffer name
#define IN_RGBA32F(b, name) layout(binding = b, rgba32f) readonly uniform imageBuffer name
#define OUT_RGBA32F(b, name) layout(binding = b, rgba32f) writeonly uniform imageBuffer name
#define INOUT_RGBA32F(b, name) layout(binding = b, rgba32f) uniform imageBuffer name
#define LOAD(name, i) imageLoad(name, int(i)).x
#define LOAD4(name, i) imageLoad(name, int(i))
#define STORE(name, i, v) imageStore(name, int(i), vec4(v))
#define STORE4(name, i, v) imageStore(name, int(i), v)

#endif
#endif
