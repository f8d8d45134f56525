//! Generates one answer and prints it with its figures:
//! `cargo run --release -p lotse-llm-candle --example generate -- MODEL_DIR TOKENIZER_DIR "question"`.

use std::io::Write;
use std::path::Path;

use lotse_llm::{Generator, Params, Prompt};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, tokenizer, question] = args.as_slice() else {
        eprintln!("usage: generate MODEL_DIR TOKENIZER_DIR QUESTION");
        std::process::exit(2);
    };
    let t = std::time::Instant::now();
    let g = lotse_llm_candle::CandleGenerator::load_dir(Path::new(model), Path::new(tokenizer)).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    eprintln!("loaded in {:.2} s", t.elapsed().as_secs_f64());
    let prompt = Prompt::user("Du bist ein hilfsbereiter Assistent. Antworte kurz auf Deutsch.", question.as_str());
    for round in 0..2 {
        let out = g
            .generate(&prompt, &Params { max_tokens: 64, ..Default::default() }, &mut |p| {
                print!("{p}");
                std::io::stdout().flush().ok();
                true
            })
            .unwrap();
        println!();
        eprintln!(
            "round {round}: prompt {} ({} cached), generated {}, prefill {:.1} tok/s, first token {:.2} s, generation {:.1} tok/s",
            out.prompt_tokens,
            out.cached_tokens,
            out.generated_tokens,
            out.prefill_rate(),
            out.first_token.as_secs_f64(),
            out.generation_rate()
        );
    }
}
