// The HTTP handler inside libevent's evhttp (libevent-dev, a C event loop on one
// thread). evhttp reads the whole body before the callback (chunked too) and refuses
// bodies over evhttp_set_max_body_size with 413 itself; it allows only GET, POST,
// HEAD, PUT and DELETE unless told otherwise (PATCH is added). The loop's thread must
// never wait on the store: the callback copies the request, a worker pool calls the
// handler, and the answer is posted back to the loop (event_base_once, with
// libevent's pthread support on), which alone touches evhttp objects.
//
//   libevent_server 8080 secret-file
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include <memory>
#include <string>

#include "example_app.h"

namespace {

struct Server {
  const example::App* app = nullptr;
  event_base* base = nullptr;
  example::WorkerPool* pool = nullptr;
};

// [embed:libevent-adapter]
const char* MethodName(evhttp_cmd_type cmd) {
  switch (cmd) {
    case EVHTTP_REQ_GET:
      return "GET";
    case EVHTTP_REQ_POST:
      return "POST";
    case EVHTTP_REQ_HEAD:
      return "HEAD";
    case EVHTTP_REQ_PUT:
      return "PUT";
    case EVHTTP_REQ_DELETE:
      return "DELETE";
    case EVHTTP_REQ_OPTIONS:
      return "OPTIONS";
    case EVHTTP_REQ_TRACE:
      return "TRACE";
    case EVHTTP_REQ_CONNECT:
      return "CONNECT";
    case EVHTTP_REQ_PATCH:
      return "PATCH";
  }
  return "";
}

// An answer on its way back to the loop's thread.
struct Reply {
  evhttp_request* req;
  bool head;
  sessionctx::HttpResponse res;
};

void SendReply(evutil_socket_t, short, void* arg) {  // on the loop's thread
  std::unique_ptr<Reply> reply(static_cast<Reply*>(arg));
  const sessionctx::HttpResponse& res = reply->res;
  evkeyvalq* headers = evhttp_request_get_output_headers(reply->req);
  for (const auto& [name, value] : res.headers) {
    evhttp_add_header(headers, name.c_str(), value.c_str());
  }
  evbuffer* body = evbuffer_new();
  if (example::HasBody(reply->head ? "HEAD" : "GET", res.status)) {
    evbuffer_add(body, res.body.data(), res.body.size());
  } else if (reply->head) {  // evhttp would send a HEAD's body: the GET's length only
    evhttp_add_header(headers, "Content-Length", std::to_string(res.body.size()).c_str());
  }
  evhttp_send_reply(reply->req, res.status, nullptr, body);
  evbuffer_free(body);
}

void Serve(evhttp_request* req, void* arg) {  // on the loop's thread: copy, hand off
  auto* server = static_cast<Server*>(arg);
  sessionctx::HttpRequest in;
  in.method = MethodName(evhttp_request_get_command(req));
  in.target = evhttp_request_get_uri(req);  // as received
  const evkeyvalq* headers = evhttp_request_get_input_headers(req);
  for (const evkeyval* h = headers->tqh_first; h != nullptr; h = h->next.tqe_next) {
    in.headers.emplace_back(h->key, h->value);
  }
  evbuffer* body = evhttp_request_get_input_buffer(req);
  in.body.resize(evbuffer_get_length(body));
  evbuffer_remove(body, in.body.data(), in.body.size());
  server->pool->Post([server, req, in = std::move(in)] {
    auto* reply = new Reply{req, in.method == "HEAD", server->app->handler->Handle(in)};
    event_base_once(server->base, -1, EV_TIMEOUT, SendReply, reply, nullptr);
  });
}
// [end:libevent-adapter]

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<example::App> app = example::Start(argc, argv, "libevent_server");
  if (!app) return 2;
  evthread_use_pthreads();  // before the base: other threads may then post to it
  event_base* base = event_base_new();
  evhttp* http = evhttp_new(base);
  evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                       EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                       EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
  evhttp_set_max_body_size(http, static_cast<ev_ssize_t>(app->options.max_body_bytes));
  evhttp_set_timeout(http, 30);
  example::WorkerPool pool(4);
  Server server{app.get(), base, &pool};
  evhttp_set_gencb(http, Serve, &server);
  if (evhttp_bind_socket(http, "127.0.0.1", static_cast<uint16_t>(app->port)) != 0) {
    std::fprintf(stderr, "libevent_server: cannot listen on port %d\n", app->port);
    return 1;
  }
  std::thread loop([base] { event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY); });
  example::Listening(app->port);
  example::WaitForStop();
  pool.Stop();  // calls under way post their answers; later ones run on the loop's thread
  const timeval flush{0, 200 * 1000};
  event_base_loopexit(base, &flush);  // the loop sends them, then ends
  loop.join();
  evhttp_free(http);
  event_base_free(base);
  return 0;
}
