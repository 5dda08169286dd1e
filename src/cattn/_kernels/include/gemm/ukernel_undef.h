/* ukernel_undef.h -- forget one instantiation's template parameters. */
#undef UK_STORE_EDGE
#undef UK_T
#undef UK_FMA
#undef UK_VEC
#undef UK_VL
#undef UK_MR
#undef UK_NV
#undef UK_LOAD
#undef UK_STORE
#undef UK_SET1
#undef UK_FMADD
#undef UK_MUL
#undef UK_ZERO
#undef UK_NAME
