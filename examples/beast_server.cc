// The HTTP handler inside a minimal Boost.Beast server: one thread per connection,
// keep-alive, the body limit enforced while reading. sessionctx-server
// (apps/http_server.cc) is the production version of the same adapter: event-driven,
// with every request limit, time-outs and graceful stop.
//
//   beast_server 8080 secret-file        # then: curl localhost:8080/healthz
#include <utility>  // before Boost: boost/asio/awaitable.hpp needs std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "sessionctx/http_handler.h"
#include "sessionctx/memory_store.h"
#include "sessionctx/session_service.h"
#include "sessionctx/jwt.h"

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

// Adapt: Beast request in, HttpHandler, Beast response out.
http::response<http::string_body> Adapt(const sessionctx::HttpHandler& handler,
                                        http::request<http::string_body>&& req) {
  sessionctx::HttpRequest in;
  in.method = std::string(req.method_string());
  in.target = std::string(req.target());  // raw: the handler decodes path segments itself
  for (const auto& field : req) {
    in.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  in.body = std::move(req.body());

  sessionctx::HttpResponse res = handler.Handle(in);
  http::response<http::string_body> out{static_cast<http::status>(res.status), req.version()};
  for (const auto& [name, value] : res.headers) out.set(name, value);
  out.body() = std::move(res.body);
  out.keep_alive(req.keep_alive());
  out.prepare_payload();
  return out;
}

void Serve(const sessionctx::HttpHandler& handler, tcp::socket socket, size_t max_body) {
  socket.set_option(tcp::no_delay(true));
  beast::flat_buffer buffer;
  beast::error_code ec;
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(max_body);  // refused while reading, chunked bodies too
    http::read(socket, buffer, parser, ec);
    if (ec == http::error::body_limit) {
      http::response<http::string_body> too_large{http::status::payload_too_large, 11};
      sessionctx::HttpResponse err = sessionctx::ErrorResponse(413, "request body is too large");
      too_large.set(http::field::content_type, "application/json");
      too_large.body() = err.body;
      too_large.keep_alive(false);
      too_large.prepare_payload();
      http::write(socket, too_large, ec);
      break;
    }
    if (ec) break;
    http::response<http::string_body> res = Adapt(handler, parser.release());
    const bool keep_alive = res.keep_alive();
    http::write(socket, res, ec);
    if (ec || !keep_alive) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: beast_server PORT SECRET_FILE\n");
    return 2;
  }
  std::ifstream secret_in(argv[2]);
  std::stringstream secret;
  secret << secret_in.rdbuf();
  std::string key = secret.str();
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();

  auto store = sessionctx::NewMemoryStore(sessionctx::StoreOptions{});
  sessionctx::SessionService service(store.get(), sessionctx::ServiceOptions{});
  absl::StatusOr<std::unique_ptr<sessionctx::TokenVerifier>> verifier =
      sessionctx::NewHs256Verifier(key, sessionctx::JwtOptions{});
  if (!verifier.ok()) {
    std::fprintf(stderr, "%s\n", verifier.status().ToString().c_str());
    return 2;
  }
  const sessionctx::HandlerOptions options;
  const sessionctx::HttpHandler handler(&service, verifier->get(), options);

  boost::asio::io_context ioc;
  tcp::acceptor acceptor(ioc, {boost::asio::ip::make_address("127.0.0.1"),
                               static_cast<unsigned short>(std::stoi(argv[1]))});
  std::printf("listening on 127.0.0.1:%d\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  while (true) {
    tcp::socket socket = acceptor.accept();
    std::thread(Serve, std::cref(handler), std::move(socket), options.max_body_bytes).detach();
  }
}
