/* scan_undef.h -- forget one vector instantiation of scan.tmpl.h. */
#undef TK_VL
#undef TK_T
#undef TK_VEC
#undef TK_NAME
#undef TK_SCALAR
#undef TK_LOAD
#undef TK_STORE
#undef TK_SET1
#undef TK_CMP
#undef TK_BELOW_TO
