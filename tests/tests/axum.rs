//! The end-to-end suite against the axum adapter.
#![allow(clippy::unwrap_used, missing_docs)]

mod suite;

use chanx_e2e::Adapter;

suite::adapter_tests!(Adapter::Axum;
    // Authentication.
    valid_session_gets_exact_200_frame,
    no_cookie_gets_403_then_4403,
    garbage_cookie_gets_403_then_4403,
    forged_cookie_gets_403_then_4403,
    expired_cookie_gets_403_then_4403,
    failed_auth_does_not_disturb_others,
    // Login API.
    login_sets_a_working_session_cookie,
    login_wrong_credentials_are_401,
    login_malformed_body_is_400,
    // Messages and validation.
    echo_round_trip,
    ping_answers_pong,
    unknown_extra_keys_are_ignored,
    payload_validation_errors,
    error_frame_does_not_echo_input,
    action_tag_errors,
    invalid_json_is_json_invalid,
    empty_text_frame_is_an_error,
    binary_frame_is_frame_type,
    non_object_json_is_model_attributes_type,
    // Routing and origin.
    unknown_paths_are_refused_with_404,
    room_id_boundaries,
    unicode_room_id_works,
    allowed_origin_is_accepted,
    missing_origin_is_accepted,
    foreign_origin_is_refused_with_403,
    // Chat and notify.
    chat_message_reaches_room_members_only,
    chat_messages_keep_order,
    closed_member_leaves_the_group,
    ping_in_chat_answers_pong,
    notify_reaches_every_chat_client_in_room,
    notify_levels_trimming_and_numbers,
    notify_bad_bodies_are_400,
    notify_other_methods_are_405,
    // Playground and AsyncAPI.
    playground_page_is_served,
    playground_info_lists_both_endpoints,
    playground_examples_are_valid_messages,
    asyncapi_document_has_a_channel_per_endpoint,
    // Completion frames.
    completion_after_echo,
    completion_after_group_message,
    completion_after_notify,
    // Limits.
    frame_at_size_limit_is_accepted,
    oversized_text_frame_closes_with_1009,
    oversized_binary_frame_closes_with_1009,
    default_limit_closes_frames_over_1_mib,
    slow_consumer_is_closed_with_4008,
    rate_limit_rejects_the_message_after_the_burst,
    heartbeat_keeps_a_reading_client_open,
    heartbeat_closes_a_silent_peer,
    // Other options.
    camelize_converts_outgoing_keys,
    authentication_frame_can_be_disabled,
    // Ordering, load, shutdown, isolation.
    pipelined_echoes_stay_in_order,
    a_reading_client_is_never_a_slow_consumer,
    a_room_burst_reaches_a_reading_member,
    concurrent_connections_all_succeed,
    shutdown_closes_with_1001_and_refuses_new_upgrades,
    misbehaving_client_does_not_affect_others,
);
