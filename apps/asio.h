// One place that includes Boost.Asio and Boost.Beast. Boost 1.74's
// boost/asio/awaitable.hpp uses std::exchange without including <utility>, which
// GCC 12 in C++20 mode rejects; including it first here fixes that for every user.
#ifndef SESSIONCTX_APPS_ASIO_H_
#define SESSIONCTX_APPS_ASIO_H_

#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#endif  // SESSIONCTX_APPS_ASIO_H_
