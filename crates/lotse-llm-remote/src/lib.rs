//! Generation on another machine: an OpenAI-compatible `/v1/chat/completions` endpoint (the
//! llama.cpp server, vLLM, …), streamed as server-sent events. For deployments that put the
//! model on GPU nodes while the web nodes stay small.
//!
//! Plain HTTP only: the generation server sits inside the city's network, and TLS, where
//! wanted, ends at a proxy in front of it. The server applies the model's chat template, so the
//! system prompt cache is the server's business (llama.cpp and vLLM both reuse prefixes).
//!
//! Threading: `Send + Sync`, blocking; call it from a blocking thread. Requests run in parallel
//! (the server batches them), every read has a timeout.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use lotse_llm::{Finish, Generation, Generator, LlmError, Params, Prompt, StopScanner};

pub struct RemoteGenerator {
    /// The server's base address, e.g. `http://gpu-node:8000`.
    base: String,
    model: String,
    name: String,
    agent: ureq::Agent,
}

impl RemoteGenerator {
    /// `base` is the server's address without `/v1`; `model` the model name it serves.
    pub fn new(base: &str, model: &str, timeout: Duration) -> RemoteGenerator {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(3)))
            .timeout_recv_response(Some(timeout))
            .timeout_recv_body(Some(timeout))
            .http_status_as_error(false)
            .build();
        RemoteGenerator {
            base: base.trim_end_matches('/').to_string(),
            model: model.to_string(),
            name: format!("remote:{model}"),
            agent: ureq::Agent::new_with_config(config),
        }
    }

    fn url(&self) -> String {
        format!("{}/v1/chat/completions", self.base)
    }

    fn error(&self, message: impl ToString) -> LlmError {
        LlmError::Remote { url: self.url(), message: message.to_string() }
    }

    fn body(&self, prompt: &Prompt, params: &Params) -> serde_json::Value {
        let mut messages = vec![serde_json::json!({"role": "system", "content": prompt.system})];
        messages
            .extend(prompt.messages.iter().map(|m| serde_json::json!({"role": m.role.as_str(), "content": m.content})));
        let mut body = serde_json::json!({
            "model": self.model,
            "messages": messages,
            "stream": true,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
            "stream_options": {"include_usage": true},
        });
        if !params.stop.is_empty() {
            body["stop"] = serde_json::json!(params.stop);
        }
        body
    }
}

impl Generator for RemoteGenerator {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(
        &self,
        prompt: &Prompt,
        params: &Params,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, LlmError> {
        let started = Instant::now();
        let response = self.agent.post(&self.url()).send_json(self.body(prompt, params)).map_err(|e| self.error(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.error(format!("HTTP {status}")));
        }
        let reader = BufReader::new(response.into_body().into_reader());
        // The server applies the stop strings too; the scanner makes sure that none is shown
        // even from a server that ignores them.
        let mut stops = StopScanner::new(&params.stop);
        let (mut first_token, mut finish, mut generated) = (None, Finish::Length, 0);
        let (mut prompt_tokens, mut cached_tokens) = (0, 0);
        for line in reader.lines() {
            let line = line.map_err(|e| self.error(e))?;
            let Some(data) = line.strip_prefix("data:").map(str::trim) else { continue };
            if data == "[DONE]" {
                break;
            }
            let event: serde_json::Value =
                serde_json::from_str(data).map_err(|e| self.error(format!("bad event: {e}")))?;
            if let Some(usage) = event.get("usage").filter(|u| u.is_object()) {
                prompt_tokens = usage["prompt_tokens"].as_u64().unwrap_or(0) as usize;
                cached_tokens = usage["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0) as usize;
                generated = usage["completion_tokens"].as_u64().unwrap_or(generated as u64) as usize;
            }
            let Some(choice) = event["choices"].get(0) else { continue };
            if let Some(piece) = choice["delta"]["content"].as_str().filter(|p| !p.is_empty()) {
                first_token.get_or_insert_with(|| started.elapsed());
                generated += 1;
                let (safe, stopped) = stops.push(piece);
                if !safe.is_empty() && !on_text(&safe) {
                    finish = Finish::Cancelled;
                    break;
                }
                if stopped {
                    finish = Finish::Stop;
                    break;
                }
            }
            match choice["finish_reason"].as_str() {
                Some("stop") => finish = Finish::Stop,
                Some("length") => finish = Finish::Length,
                _ => {}
            }
            if params.cancel.is_cancelled() {
                finish = Finish::Cancelled;
                break;
            }
        }
        if finish != Finish::Cancelled {
            let rest = stops.flush();
            if !rest.is_empty() {
                on_text(&rest);
            }
        }
        let total = started.elapsed();
        let first_token = first_token.unwrap_or(total);
        Ok(Generation {
            text: stops.text().to_string(),
            finish,
            prompt_tokens,
            cached_tokens,
            generated_tokens: generated,
            // The server does not say how long it read the prompt; the wait for the first
            // token is the closest figure.
            prefill: first_token,
            first_token,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// Serves one request on loopback with the given SSE body and returns the request it got.
    fn serve_once(events: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head and the JSON body (its length is in the head).
            loop {
                let n = stream.read(&mut buf).unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if request.len() >= head_end + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(events.as_bytes()).unwrap();
            String::from_utf8_lossy(&request).to_string()
        });
        (addr, handle)
    }

    #[test]
    fn streams_an_openai_compatible_answer() {
        let events = concat!(
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"Der Ausweis \"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"kostet 46 Euro.\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":80,\"completion_tokens\":7}}\n\n",
            "data: [DONE]\n\n"
        );
        let (addr, server) = serve_once(events);
        let g = RemoteGenerator::new(&addr, "qwen", Duration::from_secs(5));
        let mut pieces = Vec::new();
        let out = g
            .generate(&Prompt::user("System", "Was kostet er?"), &Params::default(), &mut |p| {
                pieces.push(p.to_string());
                true
            })
            .unwrap();
        assert_eq!(out.text, "Der Ausweis kostet 46 Euro.");
        assert_eq!(pieces, ["Der Ausweis ", "kostet 46 Euro."]);
        assert_eq!((out.finish, out.prompt_tokens, out.generated_tokens), (Finish::Stop, 80, 7));
        let request = server.join().unwrap();
        assert!(request.starts_with("POST /v1/chat/completions"), "{request}");
        let body: serde_json::Value = serde_json::from_str(&request[request.find('{').unwrap()..]).unwrap();
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][1]["content"], "Was kostet er?");
        assert_eq!(body["stream"], true);
    }

    #[test]
    fn an_unreachable_server_is_an_error_not_a_hang() {
        // A port nothing listens on: bind, note the port, close.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let g = RemoteGenerator::new(&format!("http://127.0.0.1:{port}"), "qwen", Duration::from_secs(2));
        let err = g.generate(&Prompt::user("S", "Q"), &Params::default(), &mut |_| true).unwrap_err();
        assert!(matches!(err, LlmError::Remote { .. }), "{err}");
    }
}
