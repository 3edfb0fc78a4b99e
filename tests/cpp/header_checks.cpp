// header_checks.cpp — compiled, not run, by tests/cpp/run.sh against the installed zenith.hpp:
// it stands alone, survives double inclusion, and (from C++20) Loader is a std::ranges range.
#include <zenith.hpp>
#include <zenith.hpp>

#if __cplusplus >= 202002L
#include <iterator>
#include <ranges>
static_assert(std::input_iterator<zenith::Loader::iterator>);
static_assert(std::sentinel_for<zenith::Loader::sentinel, zenith::Loader::iterator>);
static_assert(std::ranges::input_range<zenith::Loader>);
#endif

int main() { return zenith::version_number() == ZENITH_VERSION_NUMBER ? 0 : 1; }
