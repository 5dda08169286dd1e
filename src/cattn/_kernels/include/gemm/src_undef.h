/* src_undef.h -- forget the SRC_* macros of one source type (pack_body.h,
 * gemv_body.h). */
#undef SRC_NAME
#undef SRC_T
#undef SRC_ONE
#undef SRC_VEC
#undef SRC_TRANSPOSE
