"""Optional integrations of cattn with other libraries (each imports its
library only when used: none of them is a dependency of cattn)."""
