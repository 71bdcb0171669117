// The HTTP handler inside cpp-httplib (libcpp-httplib-dev). cpp-httplib runs a thread
// per connection from its pool and calls the handler there; it reads the whole body
// first (chunked too), answers HEAD through the GET route without the body, and
// answers 413 itself for a body over set_payload_max_length. An example only: cpp-httplib
// 0.11 is no front for real traffic (sessionctx-server is).
//
//   httplib_server 8080 secret-file
#include <httplib.h>

#include <string>
#include <thread>

#include "example_app.h"

namespace {

// [embed:httplib-adapter]
sessionctx::HttpRequest ToRequest(const httplib::Request& in) {
  sessionctx::HttpRequest out;
  out.method = in.method;
  out.target = in.target;  // raw: the handler percent-decodes path segments itself
  for (const auto& [name, value] : in.headers) out.headers.emplace_back(name, value);
  out.body = in.body;
  return out;
}

void Serve(const sessionctx::HttpHandler& handler, const httplib::Request& in,
           httplib::Response& out) {
  sessionctx::HttpResponse res = handler.Handle(ToRequest(in));
  out.status = res.status;
  std::string content_type = "application/json";
  for (const auto& [name, value] : res.headers) {
    if (name == "Content-Type") {
      content_type = value;
    } else {
      out.set_header(name, value);
    }
  }
  if (!res.body.empty()) out.set_content(res.body, content_type);  // not sent after HEAD
}
// [end:httplib-adapter]

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<example::App> app = example::Start(argc, argv, "httplib_server");
  if (!app) return 2;
  httplib::Server server;
  server.set_payload_max_length(app->options.max_body_bytes);
  server.set_keep_alive_max_count(1000);  // cpp-httplib closes after 5 requests otherwise
  server.set_tcp_nodelay(true);  // head and body go out in two writes: no Nagle wait
  // A keep-alive connection holds a thread of the pool (8 by default) while open.
  server.new_task_queue = [] { return new httplib::ThreadPool(64); };
  // cpp-httplib's own errors (413, 400) in the handler's JSON shape.
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request&, httplib::Response& out) {
        if (!out.body.empty())
          return httplib::Server::HandlerResponse::Unhandled;  // the handler's
        const char* why = out.status == 413 ? "request body is too large" : "bad request";
        out.set_content(sessionctx::ErrorResponse(out.status, why).body,
                        "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }));
  auto serve = [&app](const httplib::Request& in, httplib::Response& out) {
    Serve(*app->handler, in, out);
  };
  server.Get(".*", serve);
  server.Post(".*", serve);
  server.Put(".*", serve);
  server.Patch(".*", serve);
  server.Delete(".*", serve);
  server.Options(".*", serve);
  if (!server.bind_to_port("127.0.0.1", app->port)) {
    std::fprintf(stderr, "httplib_server: cannot listen on port %d\n", app->port);
    return 1;
  }
  std::thread listening([&server] { server.listen_after_bind(); });
  example::Listening(app->port);
  example::WaitForStop();
  server
      .stop();  // closes the listener and every connection's read; calls under way finish
  listening.join();
  return 0;
}
