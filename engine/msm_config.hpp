// Included first by the one translation unit that instantiates Boost.MSM:
// Boost 1.74's MPL vectors stop at 20 rows unless the preprocessed headers are
// bypassed, and MSM still uses the global bind placeholders.
#pragma once

#define BOOST_BIND_GLOBAL_PLACEHOLDERS
#define BOOST_MPL_CFG_NO_PREPROCESSED_HEADERS
#define BOOST_MPL_LIMIT_VECTOR_SIZE 50
#define BOOST_MPL_LIMIT_MAP_SIZE 50
