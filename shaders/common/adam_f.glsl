// The Adam update of one element (ADAM_T float) or of four (ADAM_T vec4, componentwise: the
// same operations in the same order on each component, so both builds give the same bits),
// for adam.comp and adam_vec4.comp; see adam.comp for the formulas. bc1 and bc2 are the bias
// corrections 1 - b^t, computed once an invocation.
#ifndef ADAM_F_GLSL
#define ADAM_F_GLSL

// b^t by repeated squaring: only correctly rounded multiplications, so every device agrees.
float power(float b, uint t) {
    precise float r = 1.0;
    precise float x = b;
    while (t != 0u) {
        if ((t & 1u) != 0u) r = r * x;
        x = x * x;
        t >>= 1;
    }
    return r;
}

// New (m, v) into m and v, and the new parameter returned.
ADAM_T adam_update(ADAM_T p, inout ADAM_T m, inout ADAM_T v, ADAM_T g, float bc1, float bc2) {
    m = beta1 * m + (1.0 - beta1) * g;
    v = beta2 * v + (1.0 - beta2) * g * g;
    ADAM_T denom = sqrt(v) / sqrt(bc2) + eps;
    return p - (lr / bc1) * m / denom;
}

#endif
