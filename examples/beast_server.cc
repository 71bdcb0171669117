// The HTTP handler inside a minimal Boost.Beast server: one thread per connection,
// keep-alive, the body limit enforced while reading (chunked bodies too), graceful
// stop. sessionctx-server (apps/http_server.cc) is the production version of the same
// adapter: event-driven, with every request limit, time-outs and a connection cap.
//
//   beast_server 8080 secret-file        # then: curl localhost:8080/healthz
// <utility> first: boost/asio/awaitable.hpp needs std::exchange.
// clang-format off
#include <utility>
#include <sys/socket.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <list>
#include <mutex>
#include <string>
#include <thread>
// clang-format on

#include "example_app.h"

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

// [embed:beast-adapter]
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
  // A 204 of the handler has no header; some clients (wrk's Lua response()) skip an
  // answer without any, so every answer names its server.
  out.set(http::field::server, "sessionctx-beast-example");
  out.keep_alive(req.keep_alive());
  if (res.status == 204 || res.status == 304) return out;  // no body, no Content-Length
  out.content_length(res.body.size());                     // HEAD: the GET's length
  if (example::HasBody(in.method, res.status)) out.body() = std::move(res.body);
  return out;
}
// [end:beast-adapter]

void Serve(const sessionctx::HttpHandler& handler, tcp::socket& socket, size_t max_body) {
  socket.set_option(tcp::no_delay(true));
  beast::flat_buffer buffer;
  beast::error_code ec;
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(max_body);  // refused while reading, chunked bodies too
    http::read(socket, buffer, parser, ec);
    if (ec == http::error::body_limit) {
      sessionctx::HttpResponse err = sessionctx::ErrorResponse(413, "request body is too large");
      http::response<http::string_body> too_large{http::status::payload_too_large, 11};
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

// Connections: a thread per open connection, and their sockets, so that a stop can
// end every read (a request under way is answered first) and join them.
class Connections {
 public:
  void Add(const example::App& app, tcp::socket socket) {
    std::lock_guard<std::mutex> lock(mu_);
    sockets_.push_back(std::move(socket));
    tcp::socket& s = sockets_.back();
    threads_.emplace_back(
        [&app, &s] { Serve(*app.handler, s, app.options.max_body_bytes); });
  }
  void StopAll() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (tcp::socket& s : sockets_) ::shutdown(s.native_handle(), SHUT_RD);
    }
    for (std::thread& t : threads_) t.join();  // Add is no longer called
  }

 private:
  std::mutex mu_;
  std::list<tcp::socket> sockets_;
  std::list<std::thread> threads_;
};

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<example::App> app = example::Start(argc, argv, "beast_server");
  if (!app) return 2;
  boost::asio::io_context ioc;
  tcp::acceptor acceptor(ioc, {boost::asio::ip::make_address("127.0.0.1"),
                               static_cast<unsigned short>(app->port)});
  Connections connections;
  std::thread accepting([&] {
    beast::error_code ec;
    while (true) {
      tcp::socket socket(ioc);
      acceptor.accept(socket, ec);
      if (ec) return;  // the stop below
      connections.Add(*app, std::move(socket));
    }
  });
  example::Listening(acceptor.local_endpoint().port());
  example::WaitForStop();
  ::shutdown(acceptor.native_handle(), SHUT_RD);  // wakes the accept with an error
  accepting.join();
  connections.StopAll();
  return 0;
}
