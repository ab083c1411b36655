"""`rar demo`: chat with a trained recommender in the browser and see both stages.

Modules, UI-free ones first:

- `linking.py`: movie mentions in typed text -> corpus movies (the project's title matcher),
  with the alternatives of an ambiguous mention;
- `session.py`: one browser session's conversation and per-turn records, and its export to the
  custom-data format (`rar evaluate --dataset custom` reads it back);
- `engine.py`: one recommender turn: retriever top-k, ranker top-k, per-turn cost, failures;
- `cards.py`: HTML for chips, movie cards, the two-stage comparison and the cost table;
- `app.py`: the Gradio layout and callbacks (the only module importing gradio).
"""
