package openai

import "encoding/json"

// wireChoice is one choice of a streamed chunk: a chat delta or a text
// completion piece. Null values decode as empty strings.
type wireChoice struct {
	Delta struct {
		Content string `json:"content"`
	} `json:"delta"`
	Text         string `json:"text"`
	FinishReason string `json:"finish_reason"`
}

// wireChunk is one streamed chunk, or an error payload ({"error": {...}}
// or {"object": "error", ...}).
type wireChunk struct {
	Choices []wireChoice `json:"choices"`
	Usage   *wireUsage   `json:"usage"`
	Error   *errorBody   `json:"error"`
	Object  string       `json:"object"`
	Message string       `json:"message"`
	Type    string       `json:"type"`
}

// decode decodes one chunk into c with encoding/json, reusing c's choices
// slice from the previous chunk. Every field, reused choices included, is
// reset first: encoding/json leaves a field that the chunk omits (or sets
// to null) as it was, and decodes array elements into the old ones.
func (c *wireChunk) decode(data []byte) error {
	choices := c.Choices[:cap(c.Choices)]
	clear(choices)
	*c = wireChunk{Choices: choices[:0]}
	return json.Unmarshal(data, c)
}
