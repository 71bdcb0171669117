// The HTTP handler inside Poco Net's HTTPServer (libpoco-dev). Poco runs each
// connection on a thread of its pool and hands the handler a request whose body is
// a stream (chunked bodies decoded by Poco): the adapter reads at most one byte past
// the limit before it answers 413. Poco itself writes no body after HEAD, 204 or 304.
//
//   poco_server 8080 secret-file
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>

#include <istream>
#include <string>

#include "example_app.h"

namespace {

// [embed:poco-adapter]
class Adapter final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Adapter(const example::App& app) : app_(app) {}

  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& out) override {
    sessionctx::HttpRequest in;
    in.method = req.getMethod();
    in.target = req.getURI();  // raw: the handler percent-decodes path segments itself
    for (const auto& [name, value] : req) in.headers.emplace_back(name, value);
    // The body, chunked or not, read one byte past the limit at most.
    const size_t limit = app_.options.max_body_bytes;
    in.body.resize(limit + 1);
    req.stream().read(in.body.data(), static_cast<std::streamsize>(limit + 1));
    in.body.resize(static_cast<size_t>(req.stream().gcount()));
    sessionctx::HttpResponse res =
        in.body.size() > limit
            ? sessionctx::ErrorResponse(413, "request body is too large")
            : app_.handler->Handle(in);
    if (res.status == 413) out.setKeepAlive(false);  // the rest of the body is unread

    out.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(res.status));
    for (const auto& [name, value] : res.headers) out.add(name, value);
    if (res.status == 204 || res.status == 304) {
      out.send();  // no body, no Content-Length
      return;
    }
    out.setContentLength(static_cast<std::streamsize>(res.body.size()));  // HEAD too
    std::ostream& body = out.send();  // Poco writes no body for HEAD
    if (example::HasBody(in.method, res.status)) body << res.body;
  }

 private:
  const example::App& app_;
};
// [end:poco-adapter]

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(const example::App& app) : app_(app) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new Adapter(app_);
  }

 private:
  const example::App& app_;
};

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<example::App> app = example::Start(argc, argv, "poco_server");
  if (!app) return 2;
  Poco::Net::ServerSocket socket(
      Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(app->port)));
  auto* params = new Poco::Net::HTTPServerParams;  // owned by the server
  params->setKeepAlive(true);
  params->setMaxThreads(16);
  Poco::Net::HTTPServer server(new Factory(*app), socket, params);
  server.start();
  example::Listening(socket.address().port());
  example::WaitForStop();
  server.stopAll(false);  // stop accepting; requests under way finish first
  return 0;
}
