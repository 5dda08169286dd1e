/* undef.h -- forget the RW_* operations of one simd/<isa>_<dtype>.h. */
#undef RW_T
#undef RW_VEC
#undef RW_VL
#undef RW_LOAD
#undef RW_STORE
#undef RW_SET1
#undef RW_ADD
#undef RW_SUB
#undef RW_MUL
#undef RW_DIV
#undef RW_MAX
#undef RW_EXP
#undef RW_HSUM
#undef RW_HMAX
#undef RW_LOG
#undef RW_NAME
#undef RW_FMA
