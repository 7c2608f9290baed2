// The elementwise functions of unary.comp and unary_vec4.comp, on UNARY_T (float or vec4), one
// per OP_ define (build.rs's OP_VARIANTS): x*c, x+c, x^2, sqrt(x), 1/sqrt(x), leaky relu with
// slope c (relu when c = 0). `c` is the includer's push constant.
#ifndef UNARY_F_GLSL
#define UNARY_F_GLSL

UNARY_T f(UNARY_T v) {
#if defined(OP_SCALE)
    return v * c;
#elif defined(OP_ADD_SCALAR)
    return v + c;
#elif defined(OP_SQUARE)
    return v * v;
#elif defined(OP_SQRT)
    return sqrt(v);
#elif defined(OP_RSQRT)
    return inversesqrt(v);
#elif defined(OP_LEAKY_RELU)
    // A select, not arithmetic, so every lane is exactly v or v * c.
    return mix(v * c, v, UNARY_POSITIVE(v));
#else
#error "unary.comp and unary_vec4.comp are built once per OP_ define listed in build.rs"
#endif
}

#endif
